import { expect } from "chai";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { KEEPER_NODE_OPTIONS } from "../../../keeper/src/node-flags.js";
import { KEY_VARIABLE, keeperConfig } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";
import { buildBundle, NODE, ROOT } from "./support.js";

const run = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's stages: instructions per FROM, continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const joined = text.replace(/\\\n/g, " ");
  for (const line of joined.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const [keyword, ...rest] = trimmed.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    if (instruction.keyword === "FROM") stages.push([]);
    stages.at(-1)!.push(instruction);
  }
  return stages;
}

describe("Dockerfile (its steps, performed without Docker)", function () {
  this.timeout(300_000);
  let scenario: Scenario;
  let scratch: string;

  before(async function () {
    scenario = await Scenario.start({ chain: { intervalMs: 200 }, subscriptions: 1 });
    scratch = mkdtempSync(path.join(tmpdir(), "keeper-image-"));
  });

  after(async function () {
    await scenario?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("builds a runtime folder from exactly what it copies, with production dependencies only, that passes `keeper check`", async function () {
    const stages = parseDockerfile(readFileSync(path.join(ROOT, "Dockerfile"), "utf8"));
    expect(stages).to.have.length(2);
    const [buildStage, runtime] = stages;

    // Build stage: the repository with its full install; the only build step is the bundle, done from this checkout.
    const buildRuns = buildStage.filter((i) => i.keyword === "RUN").map((i) => i.args);
    expect(buildRuns).to.deep.equal(["npm ci", "npm run build:keeper"]);
    await buildBundle();

    // Runtime stage, step by step. Any instruction this test cannot perform fails it, so the file cannot rot.
    const app = path.join(scratch, "app");
    mkdirSync(app, { recursive: true });
    let entrypoint: string[] = [];
    const imageEnv: Record<string, string> = {};
    for (const { keyword, args } of runtime) {
      switch (keyword) {
        case "FROM":
          expect(args).to.match(/^node:22\b/);
          break;
        case "WORKDIR":
          expect(args).to.equal("/app");
          break;
        case "COPY": {
          const parts = args.split(/\s+/);
          const from = parts.find((part) => part.startsWith("--from="));
          const paths = parts.filter((part) => !part.startsWith("--"));
          const destination = paths.pop()!;
          for (const source of paths) {
            // The build stage's /app is this checkout; the build context is the repository root.
            const relative = from === undefined ? source : path.relative("/app", source);
            expect(existsSync(path.join(ROOT, relative)), `COPY source ${source}`).to.equal(true);
            const target = destination.endsWith("/")
              ? path.join(app, destination, path.basename(relative))
              : path.join(app, destination);
            mkdirSync(path.dirname(target), { recursive: true });
            cpSync(path.join(ROOT, relative), target, { recursive: true });
          }
          break;
        }
        case "RUN": {
          expect(args).to.match(/^npm ci --omit=dev\b/);
          const [command, ...rest] = args.split(/\s+/);
          await run(command, rest, { cwd: app, env: { ...process.env, NODE_ENV: "production" } });
          break;
        }
        case "ENTRYPOINT":
          entrypoint = JSON.parse(args) as string[];
          break;
        case "ENV":
          for (const [, name, quoted, bare] of args.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)) {
            imageEnv[name] = quoted ?? bare;
          }
          break;
        case "USER":
        case "VOLUME":
        case "EXPOSE":
        case "HEALTHCHECK":
        case "CMD":
          break;
        default:
          throw new Error(`the test does not know how to perform ${keyword} ${args}`);
      }
    }
    expect(entrypoint).to.deep.equal(["node", "dist/keeper.mjs"]);
    expect(imageEnv.NODE_OPTIONS, "ENV NODE_OPTIONS").to.equal(KEEPER_NODE_OPTIONS);
    // The billing console's page ships next to the bundle, where its server looks for it.
    expect(existsSync(path.join(app, "dist/static/index.html")), "dist/static/index.html").to.equal(true);
    // Production dependencies only: no Hardhat, no TypeScript, no compiler.
    for (const dev of ["hardhat", "typescript", "solc", "esbuild"]) {
      expect(existsSync(path.join(app, "node_modules", dev)), dev).to.equal(false);
    }

    const configDir = path.join(scratch, "config");
    mkdirSync(configDir);
    const config = keeperConfig({
      rpcUrl: scenario.proxy.url,
      chainId: scenario.chain.chainId,
      billingAddress: scenario.deployment.billing,
      startBlock: scenario.deployment.startBlock,
      dataDir: path.join(scratch, "data"),
    });
    const configPath = path.join(configDir, "keeper.json");
    cpSync(scenario.workspace.writeConfig(config, "image.json"), configPath);
    // The image's ENTRYPOINT, run from its WORKDIR with Node 22 (the base image's).
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("KEEPER_")));
    const { stdout } = await run(NODE, [entrypoint[1], "check", "--config", configPath], {
      cwd: app,
      // The image's ENV except the paths only the image has (KEEPER_DATA_DIR=/data).
      env: { ...env, NODE_OPTIONS: imageEnv.NODE_OPTIONS, [KEY_VARIABLE]: scenario.deployment.operator.privateKey },
    });
    expect(stdout).to.match(/^ok {3}operator registered: /m);
    // The image's NODE_OPTIONS reach the keeper: 128 MiB of old space and 3 x 4 MiB of young generation.
    const heap = Number(/^ok {3}memory: V8 heap limit (\d+) MiB$/m.exec(stdout)?.[1]);
    expect(heap).to.be.within(128, 150);
    expect(stdout).to.not.match(/^FAIL/m);
  });

  it("ships a systemd unit that `systemd-analyze verify` accepts and that runs the bundle directly", async function () {
    const unit = path.join(ROOT, "keeper/ops/systemd/keeper.service");
    const text = readFileSync(unit, "utf8");
    expect(text).to.match(/^ExecStart=\/usr\/bin\/node \/opt\/recurring-billing\/dist\/keeper\.mjs run --config /m);
    expect(text).to.match(/^RestartPreventExitStatus=2 3$/m);
    expect(text).to.include(`\nEnvironment="NODE_OPTIONS=${KEEPER_NODE_OPTIONS}"\n`);
    const { stdout, stderr } = await run("systemd-analyze", ["verify", unit]).catch(
      (err: { stdout: string; stderr: string }) => {
        throw new Error(`systemd-analyze verify failed:\n${err.stdout}${err.stderr}`);
      },
    );
    expect(stdout + stderr).to.not.match(/error|invalid|unknown/i);
  });
});
