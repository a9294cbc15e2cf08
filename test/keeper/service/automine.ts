import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";

import stripJsonComments from "strip-json-comments";

import { configText } from "../../../keeper/src/cli/init.js";
import { MONTH } from "../support/billing-setup.js";
import { KEY_VARIABLE, KeeperProcess } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";
import { BUNDLE, buildBundle, NODE } from "./support.js";

const HINT = /^the node automines/;

describe("Keeper (automining development node)", function () {
  this.timeout(180_000);
  let scenario: Scenario;

  before(async function () {
    await buildBundle();
    // Automine only: a block per transaction, none otherwise (what `npx hardhat node` does by default).
    scenario = await Scenario.start({ chain: { automine: true, intervalMs: 0 }, subscriptions: 2 });
  });

  after(async function () {
    await scenario?.stop();
  });

  function start(name: string, overrides: Record<string, unknown>): KeeperProcess {
    const base = JSON.parse(readFileSync(scenario.configPath, "utf8")) as Record<string, unknown>;
    const configPath = scenario.workspace.writeConfig(
      { ...base, store: { dataDir: path.join(scenario.workspace.dir, `${name}-data`) }, ...overrides },
      `${name}.json`,
    );
    const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", configPath], {
      [KEY_VARIABLE]: scenario.deployment.operator.privateKey,
    });
    scenario.keepers.push(keeper);
    return keeper;
  }

  it("logs a one-line hint when its confirmations wait for blocks nobody mines", async function () {
    const keeper = start("stalling", { confirmations: 2, txConfirmations: 1 });
    const hint = await keeper.waitForLog((line) => HINT.test(String(line.msg)), 60_000);
    expect(String(hint.msg)).to.include("keeper init --dev");
    keeper.signal("SIGTERM");
    expect(await keeper.exitWithin(15_000)).to.deep.equal({ code: 0, signal: null });
  });

  it("charges with no extra blocks with the settings `keeper init --dev` writes, and gives no hint", async function () {
    const dev = JSON.parse(
      stripJsonComments(configText({ rpcUrl: "", chainId: 31337, billingAddress: "", dev: true })),
    ) as Record<string, number>;
    const keeper = start("dev", {
      confirmations: dev.confirmations,
      txConfirmations: dev.txConfirmations,
    });
    await keeper.waitForLog("store ready: syncing", 60_000);
    const before = await scenario.charges();
    // One block (the warp); after it only the keeper's own transactions are mined.
    await scenario.chain.warp(MONTH);
    await scenario.waitForCharges(before.length + 2, 60_000, keeper);
    await keeper.waitForMetric("keeper_charges_confirmed_total", (n) => n >= 2, 30_000);
    expect(keeper.logs.filter((line) => HINT.test(String(line.msg)))).to.deep.equal([]);
  });
});
