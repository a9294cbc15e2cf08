import { expect } from "chai";

import { parseEther } from "ethers";

import { MONTH } from "../support/billing-setup.js";
import { KEY_VARIABLE, KeeperProcess } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";
import { BUNDLE, buildBundle, NODE } from "./support.js";

async function readyz(keeper: KeeperProcess): Promise<number> {
  const response = await fetch(new URL("/readyz", keeper.metricsUrl), { headers: { connection: "close" } });
  return response.status;
}

/** Polls /healthz until `predicate` holds; returns the last answer. */
async function waitForHealth(
  keeper: KeeperProcess,
  predicate: (health: { status: number; reasons: string[] }) => boolean,
  timeoutMs = 60_000,
): Promise<{ status: number; reasons: string[] }> {
  const deadline = Date.now() + timeoutMs;
  let last = { status: 0, reasons: [] as string[] };
  for (;;) {
    const { status, body } = await keeper.health().catch(() => ({ status: 0, body: undefined }));
    last = { status, reasons: ((body as { reasons?: string[] } | undefined)?.reasons ?? []).slice() };
    if (predicate(last)) return last;
    if (Date.now() > deadline || !keeper.running) {
      throw new Error(`health stayed ${JSON.stringify(last)}:\n${keeper.describe()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function startKeeper(scenario: Scenario): KeeperProcess {
  const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", scenario.configPath], {
    [KEY_VARIABLE]: scenario.deployment.operator.privateKey,
  });
  scenario.keepers.push(keeper);
  return keeper;
}

describe("Keeper (health)", function () {
  this.timeout(180_000);

  before(async function () {
    await buildBundle();
  });

  describe("an operator key that is not registered", function () {
    let scenario: Scenario;

    before(async function () {
      scenario = await Scenario.start({
        chain: { intervalMs: 200 },
        subscriptions: 1,
        deploy: { registerOperator: false },
      });
    });

    after(async function () {
      await scenario?.stop();
    });

    it("is ready but unhealthy: /healthz 503 naming operator_not_registered, and the same reason as a metric", async function () {
      const keeper = startKeeper(scenario);
      await keeper.waitForLog("store ready: syncing", 60_000);
      expect(await readyz(keeper)).to.equal(200);
      const health = await waitForHealth(keeper, (h) => h.reasons.includes("operator_not_registered"));
      expect(health.status).to.equal(503);
      expect(await keeper.metric("keeper_health_problem", { reason: "operator_not_registered" })).to.equal(1);
      expect(await keeper.metric("keeper_health_problem", { reason: "cannot_pay_next_batch" })).to.equal(0);
    });
  });

  describe("an operator without ETH", function () {
    let scenario: Scenario;

    before(async function () {
      scenario = await Scenario.start({ chain: { intervalMs: 200 }, subscriptions: 2 });
      await scenario.chain.setBalance(scenario.operator, 0n);
    });

    after(async function () {
      await scenario?.stop();
    });

    it("never fee-bumps a transaction the node refused for funds, warns once, and charges by itself once funded", async function () {
      const keeper = startKeeper(scenario);
      await keeper.waitForLog("store ready: syncing", 60_000);
      const health = await waitForHealth(keeper, (h) => h.reasons.includes("cannot_pay_next_batch"));
      expect(health.status).to.equal(503);
      // Period 0 was paid at subscribe; period 1 falls due now.
      await scenario.chain.warp(MONTH);
      await keeper.waitForLog((line) => String(line.msg).startsWith("operator cannot pay for gas"), 30_000);
      // Several replaceAfterMs (3 s) periods pass while the node keeps refusing.
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      expect(keeper.running, keeper.describe()).to.equal(true);
      expect(await keeper.metric("keeper_tx_replacements_total")).to.equal(0);
      expect(keeper.logs.filter((line) => line.msg === "stuck transaction replaced with higher fees")).to.deep.equal(
        [],
      );
      const warnings = keeper.logs.filter((line) => String(line.msg).startsWith("operator cannot pay for gas"));
      expect(warnings, "one warning per minute").to.have.length(1);
      expect(await scenario.charges()).to.have.length(2);

      await scenario.chain.setBalance(scenario.operator, parseEther("10"));
      await scenario.waitForCharges(4, 60_000, keeper);
      await waitForHealth(keeper, (h) => h.status === 200);
      expect(await keeper.metric("keeper_tx_replacements_total")).to.equal(0);
      expect(await scenario.problems(2)).to.deep.equal([]);
    });
  });
});
