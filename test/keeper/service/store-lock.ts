import { expect } from "chai";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

import { lockFileOf } from "../../../keeper/src/store/lock.js";
import { MONTH } from "../support/billing-setup.js";
import { createTestDatabase, requirePostgres } from "../bus/services.js";
import { KEY_VARIABLE, KeeperProcess, keeperConfig } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";
import { BUNDLE, buildBundle, keeperCli, NODE } from "./support.js";

/** Every file and folder under `dir` whose mode lets anyone but the owner in. */
function openToOthers(dir: string): string[] {
  const found: string[] = [];
  const mode = statSync(dir).mode & 0o777;
  if (mode & 0o077) found.push(`${dir} ${mode.toString(8)}`);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...openToOthers(full));
    else if (statSync(full).mode & 0o077) found.push(`${full} ${(statSync(full).mode & 0o777).toString(8)}`);
  }
  return found;
}

describe("Keeper (store lock)", function () {
  this.timeout(180_000);
  let scenario: Scenario;
  const running: KeeperProcess[] = [];

  before(async function () {
    await buildBundle();
    scenario = await Scenario.start({ chain: { intervalMs: 200 }, subscriptions: 1 });
  });

  afterEach(async function () {
    for (const keeper of running.splice(0)) if (keeper.running) await keeper.kill("SIGKILL");
  });

  after(async function () {
    await scenario?.stop();
  });

  function config(name: string, overrides: Record<string, unknown> = {}): string {
    return scenario.workspace.writeConfig(
      keeperConfig(
        {
          rpcUrl: scenario.proxy.url,
          chainId: scenario.chain.chainId,
          billingAddress: scenario.deployment.billing,
          startBlock: scenario.deployment.startBlock,
          dataDir: path.join(scenario.workspace.dir, `${name}-data`),
        },
        overrides,
      ),
      `${name}.json`,
    );
  }

  const keyEnv = () => ({ [KEY_VARIABLE]: scenario.deployment.operator.privateKey });

  function start(configPath: string): KeeperProcess {
    const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", configPath], keyEnv());
    running.push(keeper);
    return keeper;
  }

  it("refuses a second keeper on the same data directory: exit 2 with one line naming the holder's pid", async function () {
    const configPath = config("twice");
    const first = start(configPath);
    await first.waitForLog("store ready: syncing", 60_000);
    const second = start(configPath);
    const exit = await second.exitWithin(30_000);
    expect(exit, second.describe()).to.deep.equal({ code: 2, signal: null });
    const stderr = second.output.join("").trim().split("\n");
    expect(stderr, second.output.join("")).to.have.length(1);
    expect(stderr[0]).to.include(`pid ${first.pid}`);
    expect(first.running, "the first keeper keeps running").to.equal(true);
    // `keeper check` says so too, on its store line.
    const check = await keeperCli(["check", "--config", configPath], keyEnv());
    expect(check.code).to.equal(1);
    expect(check.stdout).to.match(
      new RegExp(`^FAIL store: .* is locked by a running keeper \\(pid ${first.pid}\\)$`, "m"),
    );
  });

  it("creates the store owner-only (files 0600, folders 0700)", async function () {
    const configPath = config("modes");
    const keeper = start(configPath);
    await keeper.waitForLog("store ready: syncing", 60_000);
    const dataDir = path.join(scenario.workspace.dir, "modes-data");
    expect(readdirSync(dataDir).length).to.be.greaterThan(0);
    expect(openToOthers(dataDir)).to.deep.equal([]);
    expect(statSync(lockFileOf(dataDir)).mode & 0o777).to.equal(0o600);
    // While it runs, new files land in the owner-only folder; after a stop the whole tree is owner-only again.
    await scenario.chain.warp(MONTH);
    await scenario.waitForCharges(2, 60_000, keeper);
    keeper.signal("SIGTERM");
    expect(await keeper.exitWithin(15_000)).to.deep.equal({ code: 0, signal: null });
    expect(statSync(dataDir).mode & 0o777).to.equal(0o700);
    expect(openToOthers(dataDir)).to.deep.equal([]);
  });

  it("takes over a lock left by a dead process", async function () {
    const configPath = config("stale");
    const dataDir = path.join(scenario.workspace.dir, "stale-data");
    const first = start(configPath);
    await first.waitForLog("store ready: syncing", 60_000);
    await first.kill("SIGKILL");
    expect(statSync(lockFileOf(dataDir)).isFile(), "kill -9 leaves the lock file").to.equal(true);
    const second = start(configPath);
    await second.waitForLog("store ready: syncing", 60_000);
    // A lock file whose pid is long gone (e.g. from before a reboot) is stale too.
    await second.kill("SIGKILL");
    writeFileSync(lockFileOf(dataDir), "pid=2147483646\n");
    const third = start(configPath);
    await third.waitForLog("store ready: syncing", 60_000);
  });

  it("refuses a second instance with the same instanceId on PostgreSQL (exit 2, naming the holder's pid)", async function () {
    await requirePostgres();
    const database = await createTestDatabase();
    try {
      const shared = { store: { postgresUrl: database.url }, instanceId: "keeper-a" };
      const first = start(config("pg-first", shared));
      await first.waitForLog("store ready: syncing", 60_000);
      const second = start(config("pg-second", shared));
      const exit = await second.exitWithin(30_000);
      expect(exit, second.describe()).to.deep.equal({ code: 2, signal: null });
      const stderr = second.output.join("").trim();
      expect(stderr.split("\n")).to.have.length(1);
      expect(stderr).to.include("keeper-a").and.include(`pid=${first.pid}`);
      const check = await keeperCli(["check", "--config", config("pg-check", shared)], keyEnv());
      expect(check.code).to.equal(1);
      expect(check.stdout).to.match(/^FAIL store: instanceId keeper-a is already running/m);
      // Another instanceId on the same store is welcome (scale-out).
      const other = start(config("pg-other", { ...shared, instanceId: "keeper-b" }));
      await other.waitForLog("store ready: syncing", 60_000);
    } finally {
      for (const keeper of running.splice(0)) if (keeper.running) await keeper.kill("SIGKILL");
      await database.drop();
    }
  });
});
