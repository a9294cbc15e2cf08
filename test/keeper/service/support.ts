// Helpers for tests of the keeper as a service: the production bundle (built once per run), the `keeper` CLI run to
// completion, and TCP ports (a free one to configure, and whether a stopped keeper released it).
import { execFile } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";

export const ROOT = path.resolve(new URL("../../..", import.meta.url).pathname);
/** Node 22 from node_modules (Hardhat's own), not whatever `node` is first on PATH. */
export const NODE = path.join(ROOT, "node_modules/.bin/node");
export const BUNDLE = path.join(ROOT, "dist/keeper.mjs");

const run = promisify(execFile);
let built: Promise<unknown> | undefined;

/** Builds dist/keeper.mjs from the current sources (once per test run; `hardhat test` already built the types). */
export function buildBundle(): Promise<unknown> {
  built ??= run(NODE, [path.join(ROOT, "scripts/build/keeper.mjs")], { cwd: ROOT });
  return built;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/keeper.mjs <args>` to completion. */
export async function keeperCli(
  args: string[],
  env: Record<string, string> = {},
  cwd = ROOT,
  timeoutMs = 60_000,
): Promise<CliResult> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("KEEPER_")));
  try {
    const { stdout, stderr } = await run(NODE, [BUNDLE, ...args], {
      cwd,
      env: { ...inherited, ...env },
      timeout: timeoutMs,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const error = err as { code?: unknown; stdout?: string; stderr?: string };
    return {
      code: typeof error.code === "number" ? error.code : null,
      stdout: error.stdout ?? "",
      stderr: error.stderr ?? "",
    };
  }
}

/** A TCP port free right now on 127.0.0.1 (bind 0, read it, release it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether `port` can be bound on 127.0.0.1 (nobody listens on it any more). */
export async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
