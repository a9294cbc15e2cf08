import { expect } from "chai";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";

import { Wallet } from "ethers";

import { loadConfig } from "../../../keeper/src/config.js";
import { KEY_VARIABLE, KeeperProcess, keeperConfig } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";
import { BUNDLE, buildBundle, freePort, keeperCli, NODE, portIsFree, ROOT } from "./support.js";

/** How long a supervisor may wait after SIGTERM (the keeper's own stop deadline is 15 s). */
const STOP_WITHIN_MS = 10_000;

describe("Keeper (production entry)", function () {
  this.timeout(180_000);
  let scenario: Scenario;

  before(async function () {
    await buildBundle();
    scenario = await Scenario.start({ chain: { intervalMs: 200 }, subscriptions: 3 });
  });

  after(async function () {
    await scenario?.stop();
  });

  /** The scenario's config with overrides, written to a new file in its workspace. */
  function writeConfig(name: string, overrides: Record<string, unknown> = {}): string {
    const base = keeperConfig(
      {
        rpcUrl: scenario.proxy.url,
        chainId: scenario.chain.chainId,
        billingAddress: scenario.deployment.billing,
        startBlock: scenario.deployment.startBlock,
        dataDir: path.join(scenario.workspace.dir, `${name}-data`),
      },
      overrides,
    );
    return scenario.workspace.writeConfig(base, `${name}.json`);
  }

  const keyEnv = () => ({ [KEY_VARIABLE]: scenario.deployment.operator.privateKey });

  describe("the bundle", function () {
    it("imports nothing from Hardhat or the TypeScript sources: production dependencies only", function () {
      const text = readFileSync(BUNDLE, "utf8");
      const imports = [...text.matchAll(/^import .* from "([^"]+)";$/gm)].map((match) => match[1]);
      const packages = new Set(
        imports
          .filter((name) => !name.startsWith("node:"))
          .map((name) =>
            name
              .split("/")
              .slice(0, name.startsWith("@") ? 2 : 1)
              .join("/"),
          ),
      );
      const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
        dependencies: Record<string, string>;
      };
      for (const name of packages) expect(Object.keys(pkg.dependencies), `bundle imports ${name}`).to.include(name);
      expect(text).to.not.match(/from "hardhat/);
      expect(statSync(BUNDLE).mode & 0o111, "executable").to.not.equal(0);
    });

    it("answers bad usage with one line and exit code 2", async function () {
      const unknown = await keeperCli(["frobnicate"]);
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr.trim().split("\n")).to.have.length(1);
      expect(unknown.stderr).to.include('unknown command "frobnicate"');
      const badOption = await keeperCli(["check", "--nope"]);
      expect(badOption.code).to.equal(2);
      expect(badOption.stderr).to.include("--nope");
    });
  });

  describe("keeper init", function () {
    it("writes a commented config and an encrypted keystore (0600) and prints the address to register and fund", async function () {
      const dir = path.join(scenario.workspace.dir, "init");
      const password = "a long test password";
      const result = await keeperCli(
        ["init", "--dir", dir, "--rpc-url", scenario.proxy.url, "--billing-address", scenario.deployment.billing],
        { KEEPER_KEYSTORE_PASSWORD: password },
      );
      expect(result.code, result.stderr).to.equal(0);
      const address = /operator address: (0x[0-9a-fA-F]{40})/.exec(result.stdout)?.[1];
      expect(address, result.stdout).to.be.a("string");
      expect(result.stdout)
        .to.match(/register/i)
        .and.match(/fund/i);
      const keystore = readFileSync(path.join(dir, "operator.keystore.json"), "utf8");
      const wallet = await Wallet.fromEncryptedJson(keystore, password);
      expect(wallet.address).to.equal(address);
      expect(result.stdout + result.stderr).to.not.include(wallet.privateKey.slice(2));
      for (const file of ["keeper.json", "operator.keystore.json"]) {
        expect(statSync(path.join(dir, file)).mode & 0o777, file).to.equal(0o600);
      }
      const text = readFileSync(path.join(dir, "keeper.json"), "utf8");
      expect(text).to.match(/^\s*\/\/ /m);
      const config = loadConfig(path.join(dir, "keeper.json"), {});
      expect(config.billingAddress).to.equal(scenario.deployment.billing);
      expect(config.signer).to.include({ type: "keystore", passwordEnv: "KEEPER_KEYSTORE_PASSWORD" });

      // A second init refuses to replace the key (exit 2, nothing changed).
      const again = await keeperCli(["init", "--dir", dir], { KEEPER_KEYSTORE_PASSWORD: password });
      expect(again.code).to.equal(2);
      expect(again.stderr).to.include("already exists");
      expect(readFileSync(path.join(dir, "operator.keystore.json"), "utf8")).to.equal(keystore);

      // The new key is neither registered nor funded: check says so, one line each, exit 1.
      const check = await keeperCli(["check", "--config", path.join(dir, "keeper.json")], {
        KEEPER_KEYSTORE_PASSWORD: password,
      });
      expect(check.code, check.stdout + check.stderr).to.equal(1);
      expect(check.stdout).to.match(/^FAIL operator registered: .*not an operator/m);
      expect(check.stdout).to.match(/^FAIL balance: .*fund/m);
      expect(check.stdout).to.match(/^ok {3}chain id: 31337$/m);
    });

    it("--dev writes confirmations an automining node does not stall on", async function () {
      const dir = path.join(scenario.workspace.dir, "init-dev");
      const result = await keeperCli(["init", "--dir", dir, "--dev"], { KEEPER_KEYSTORE_PASSWORD: "dev password" });
      expect(result.code, result.stderr).to.equal(0);
      const config = loadConfig(path.join(dir, "keeper.json"), {});
      expect(config.confirmations).to.equal(0);
      expect(config.txConfirmations).to.equal(1);
    });

    it("refuses to run without a password when stdin is not a terminal (exit 2, nothing written)", async function () {
      const dir = path.join(scenario.workspace.dir, "init-nopw");
      const result = await keeperCli(["init", "--dir", dir]);
      expect(result.code).to.equal(2);
      expect(result.stderr).to.include("KEEPER_KEYSTORE_PASSWORD");
      expect(() => statSync(dir)).to.throw();
    });
  });

  describe("keeper check", function () {
    it("passes every check for a registered, funded operator (exit 0, one line per check)", async function () {
      const result = await keeperCli(["check", "--config", writeConfig("check-ok")], keyEnv());
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      const lines = result.stdout.trim().split("\n");
      expect(lines.map((line) => line.split(":")[0])).to.deep.equal([
        "ok   config",
        "ok   rpc",
        "ok   chain id",
        "ok   billing contract",
        "ok   registry contract",
        "ok   operator registered",
        "ok   balance",
        "ok   store",
        "ok   memory",
      ]);
      // Run without NODE_OPTIONS here: the line says V8's default is in use and what production sets.
      expect(result.stdout).to.match(
        /^ok {3}memory: V8 heap limit \d+ MiB \(V8's default for this machine; the systemd unit and the Dockerfile set NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=4"\)$/m,
      );
    });

    it("fails the chain checks on a wrong chain id (exit 1) and a bad config with exit 2", async function () {
      const wrong = await keeperCli(["check", "--config", writeConfig("check-chain", { chainId: 5 })], keyEnv());
      expect(wrong.code).to.equal(1);
      expect(wrong.stdout).to.match(/^FAIL chain id: the RPC serves chain 31337, the config says 5$/m);
      const bad = await keeperCli(["check", "--config", writeConfig("check-bad", { confirmations: "two" })], keyEnv());
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.include("confirmations");
      const down = await keeperCli(
        ["check", "--config", writeConfig("check-down", { rpcUrl: `http://127.0.0.1:${await freePort()}` })],
        keyEnv(),
      );
      expect(down.code).to.equal(1);
      expect(down.stdout)
        .to.match(/^FAIL rpc: /m)
        .and.match(/^skip chain id: RPC unreachable$/m);
    });
  });

  describe("signals", function () {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      it(`stops on ${signal} to the pid of \`node dist/keeper.mjs run\` within ${STOP_WITHIN_MS / 1000} s and frees its port`, async function () {
        const port = await freePort();
        const config = writeConfig(`signal-${signal}`, { metrics: { host: "127.0.0.1", port } });
        const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", config], keyEnv());
        try {
          await keeper.waitForLog("store ready: syncing", 60_000);
          expect(await portIsFree(port)).to.equal(false);
          const sentAt = Date.now();
          keeper.signal(signal);
          const exit = await keeper.exitWithin(STOP_WITHIN_MS);
          expect(exit, `still running ${STOP_WITHIN_MS} ms after ${signal}:\n${keeper.describe()}`).to.deep.equal({
            code: 0,
            signal: null,
          });
          console.log(`      ${signal}: exited in ${Date.now() - sentAt} ms`);
          expect(await portIsFree(port)).to.equal(true);
          expect(keeper.logs.some((line) => line.msg === "keeper stopped")).to.equal(true);
        } finally {
          if (keeper.running) await keeper.kill("SIGKILL");
        }
      });
    }

    it("stops on SIGTERM while it waits for an unreachable RPC", async function () {
      const config = writeConfig("signal-unreachable", { rpcUrl: `http://127.0.0.1:${await freePort()}` });
      const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", config], keyEnv());
      try {
        await keeper.waitForLog("RPC unreachable: retrying", 60_000);
        keeper.signal("SIGTERM");
        const exit = await keeper.exitWithin(STOP_WITHIN_MS);
        expect(exit, keeper.describe()).to.deep.equal({ code: 0, signal: null });
      } finally {
        if (keeper.running) await keeper.kill("SIGKILL");
      }
    });

    it("stops the real keeper on SIGTERM to the pid of `npm run keeper` (no npm/sh/tsx wrapper left behind)", async function () {
      const port = await freePort();
      const config = writeConfig("signal-npm", { metrics: { host: "127.0.0.1", port } });
      const npm = KeeperProcess.spawn("npm", ["run", "--silent", "keeper", "--", "--config", config], keyEnv());
      try {
        await npm.waitForLog("store ready: syncing", 120_000);
        npm.signal("SIGTERM");
        const exit = await npm.exitWithin(STOP_WITHIN_MS);
        expect(exit, `npm still running:\n${npm.describe()}`).to.not.equal(undefined);
        // The keeper itself (npm's child) stopped and released its port.
        const deadline = Date.now() + STOP_WITHIN_MS;
        while (!(await portIsFree(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(await portIsFree(port), `port ${port} still held:\n${npm.describe()}`).to.equal(true);
        expect(npm.logs.some((line) => line.msg === "keeper stopped")).to.equal(true);
      } finally {
        if (npm.running) await npm.kill("SIGKILL");
      }
    });
  });

  describe("keeper status", function () {
    it("shows the sync head, pending transactions and the last charges, from a running keeper and from its store", async function () {
      const port = await freePort();
      const config = writeConfig("status", { metrics: { host: "127.0.0.1", port } });
      const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", config], keyEnv());
      try {
        await keeper.waitForLog("store ready: syncing", 60_000);
        // Earlier tests' keepers charged the first period: this keeper's store learns of it from the events.
        const charges = await scenario.waitForCharges(3, 60_000);
        const lastChargeBlock = Math.max(...charges.map((charge) => charge.blockNumber));
        await keeper.waitForMetric("keeper_synced_block", (block) => block >= lastChargeBlock, 60_000);
        // Where the loop's time went, per phase: every phase has run once a pass that scheduled has also ended with
        // its checks (the last phase; reading between the two saw no "checks" yet).
        for (const phase of ["schedule", "checks"]) {
          await keeper.waitForMetric("keeper_loop_seconds_total", (seconds) => seconds > 0, 30_000, { phase });
        }
        const phases = (await keeper.metrics()).filter((sample) => sample.name === "keeper_loop_seconds_total");
        expect(phases.map((sample) => sample.labels.phase).sort()).to.deep.equal([
          "checks",
          "leases",
          "schedule",
          "sync",
          "txs",
        ]);
        for (const sample of phases) expect(sample.value, sample.labels.phase).to.be.greaterThan(0);
        const live = await keeperCli(["status", "--config", config], keyEnv());
        expect(live.code, live.stderr).to.equal(0);
        expect(live.stdout).to.match(/^store: running keeper \(pid \d+\)$/m);
        expect(live.stdout).to.match(/^sync: block \d+, head \d+, lag \d+ blocks$/m);
        expect(live.stdout).to.match(/^last charges: [3-9]/m);
        keeper.signal("SIGTERM");
        expect(await keeper.exitWithin(STOP_WITHIN_MS)).to.deep.equal({ code: 0, signal: null });
        const stored = await keeperCli(["status", "--config", config], keyEnv());
        expect(stored.code, stored.stderr).to.equal(0);
        expect(stored.stdout).to.match(/^pending transactions: 0$/m);
        expect(stored.stdout).to.match(/^last charges: [3-9]/m);
        expect(stored.stdout).to.include("subscription 1 ");
      } finally {
        if (keeper.running) await keeper.kill("SIGKILL");
      }
    });
  });
});
