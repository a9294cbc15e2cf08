// Runs the Safe tasks as owners do: `npx hardhat ...` in processes of their own, against a `npx hardhat node` started
// in yet another process, whose accounts sign with eth_signTypedData_v4 (the node stands in for a remote signer).
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");
const HARDHAT_CLI = path.join(ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");

/** What a finished process left. */
export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A free TCP port: `hardhat node` cannot listen on port 0 and report it, so bind port 0 here, read the port the
 * system chose, and release it for the node.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A `npx hardhat node` in its own process, with its URL; `stop()` ends that process (and only it). */
export interface HardhatNode {
  url: string;
  stop: () => Promise<void>;
}

/** Starts `hardhat node` on a free port and waits until it serves JSON-RPC. */
export async function startHardhatNode(): Promise<HardhatNode> {
  const port = await freePort();
  const child = spawn(process.execPath, [HARDHAT_CLI, "node", "--port", String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hardhat node did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Started HTTP and WebSocket JSON-RPC server at")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`hardhat node exited with ${code}:\n${output}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => stopProcess(child) };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  await exited;
}

/**
 * Runs `hardhat --network remoteSigner <args>` in a new process whose remote signer is `url`.
 *
 * @param input Written to the process's standard input, which is then closed (so it is not a terminal).
 */
export function hardhatCli(url: string, args: string[], input = ""): Promise<Finished> {
  return run(process.execPath, [HARDHAT_CLI, "--network", "remoteSigner", ...args], url, input);
}

/**
 * Runs the same command under `script` (util-linux), which gives it a pseudo-terminal, and types `input` into it:
 * how a person at a terminal answers a prompt.
 */
export function hardhatCliOnTerminal(url: string, args: string[], input: string): Promise<Finished> {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, HARDHAT_CLI, "--network", "remoteSigner", ...args].map(quote).join(" ");
  return run("script", ["--quiet", "--return", "--command", command, "/dev/null"], url, input, 1_500);
}

function run(command: string, args: string[], url: string, input: string, typeAfterMs = 0): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, REMOTE_SIGNER_URL: url },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    // On a terminal, type only once the prompt can be waiting (a pty discards nothing, but this reads like a person).
    setTimeout(() => child.stdin.end(input), typeAfterMs);
  });
}
