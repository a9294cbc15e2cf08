// The keeper behind providers that answer late, stale, crossed or not at all (issue 17), judged by the chain: every
// due period charged exactly once, every event of the billing contract stored once (none lost, none twice), and no
// rollback for a chain that never reorged.
import { expect } from "chai";

import { MONTH, subscribeCustomers } from "./support/billing-setup.js";
import { chargeProblems } from "./support/chain-evidence.js";
import type { KeeperProcess } from "./support/keeper-process.js";
import { Scenario } from "./support/scenario.js";

const SEED = Number(process.env.KEEPER_TEST_SEED ?? 17);
const EARLY = 30;
const LATE = 20;
const MONTHS = 2;

/** Logs of the billing contract in startBlock..`toBlock`, straight from the node. */
async function billingLogCount(scenario: Scenario, toBlock: number): Promise<number> {
  const logs = await scenario.chain.rpc<unknown[]>("eth_getLogs", [
    {
      address: scenario.deployment.billing,
      fromBlock: `0x${scenario.deployment.startBlock.toString(16)}`,
      toBlock: `0x${toBlock.toString(16)}`,
    },
  ]);
  return logs.length;
}

/**
 * Runs the billing story against `scenario`: subscriptions made while the keeper runs (their events land at the head,
 * where a lagging index hides them), MONTHS months of charges, then a fault-free settle. Returns the keeper.
 */
async function runBilling(
  scenario: Scenario,
  duringMonth?: (month: number, keeper: KeeperProcess) => Promise<void> | void,
): Promise<KeeperProcess> {
  const keeper = await scenario.startKeeper();
  // Caught up first: the new subscriptions' events then land in the newest blocks, where a lagging index hides them.
  const start = await scenario.chain.blockNumber();
  await keeper.waitForMetric("keeper_synced_block", (block) => block >= start - 2, 60_000);
  const late = await subscribeCustomers(scenario.chain, scenario.deployment, { count: LATE });
  for (let month = 1; month <= MONTHS; month++) {
    await scenario.chain.warp(MONTH);
    const during = duringMonth?.(month, keeper);
    await scenario.waitForCharges((EARLY + LATE) * (month + 1), 90_000, keeper);
    await during;
  }
  for (const proxy of [scenario.proxy, ...scenario.moreProxies]) proxy.policy = { seed: SEED };
  await keeper.waitForMetric("keeper_pending_txs", (pending) => pending === 0, 30_000);
  const head = await scenario.chain.blockNumber();
  await keeper.waitForMetric("keeper_synced_block", (block) => block >= head - 2, 30_000);

  const charges = await scenario.charges();
  expect(chargeProblems(charges, scenario.subscriptionIds, MONTHS + 1), "early subscriptions").to.deep.equal([]);
  expect(chargeProblems(charges, late, MONTHS + 1), "subscriptions made while the keeper ran").to.deep.equal([]);
  expect(await scenario.problems(MONTHS + 1).then((p) => p.filter((x) => !x.startsWith("subscription")))).to.deep.equal(
    [],
  );
  const synced = await keeper.metric("keeper_synced_block");
  expect(await keeper.metric("keeper_events_synced_total"), "every billing event stored exactly once").to.equal(
    await billingLogCount(scenario, synced),
  );
  expect(await keeper.metric("keeper_reorgs_total"), "no rollback without a reorg").to.equal(0);
  expect(keeper.running, "no crash").to.equal(true);
  return keeper;
}

describe("Keeper (process)", function () {
  describe("behind a hostile RPC provider", function () {
    this.timeout(300_000);
    let scenario: Scenario | undefined;

    afterEach(async function () {
      await scenario?.stop();
      scenario = undefined;
    });

    it("loses no event to a lagging log index, crossed answers, rate limits or bad header reads, and never rolls back", async function () {
      console.log(`      seed ${SEED} (KEEPER_TEST_SEED)`);
      scenario = await Scenario.start({
        chain: { automine: false, intervalMs: 500 },
        subscriptions: EARLY,
        faults: {
          seed: SEED,
          // Logs of the newest 12 blocks missing (6 s at 500 ms blocks): far more than the 2 confirmations.
          logLagBlocks: 12,
          crossRate: 0.05,
          rateLimitRate: 0.05,
          retryAfterSeconds: 1,
          headerFlakeRate: 0.1,
        },
        config: { rpcTimeoutMs: 2000, txConfirmations: 2 },
      });
      const proxy = scenario.proxy;
      const keeper = await runBilling(scenario, () => {
        // A one-second burst in which every header read carries another hash (a node of another fork).
        proxy.headerBurst(1000);
      });
      const { injected } = proxy;
      const suspicions = await keeper.metric("keeper_reorg_suspicions_total", { confirmed: "false" });
      const inconsistent = await keeper.metric("keeper_sync_inconsistent_answers_total");
      console.log(
        `      injected ${JSON.stringify(injected)}; inconsistent log answers held ${inconsistent}, reorg suspicions not confirmed ${suspicions}, rollbacks ${await keeper.metric("keeper_reorgs_total")}`,
      );
      expect(injected.hiddenLogs, "logs hidden by the lagging index").to.be.greaterThan(0);
      expect(inconsistent, "lagging answers noticed").to.be.greaterThan(0);
      expect(injected.crossedIds, "crossed answers").to.be.greaterThan(0);
      expect(injected.rateLimited, "rate limits").to.be.greaterThan(0);
      expect(injected.flakyHeaders, "bad header reads").to.be.greaterThan(0);
      // Whether a bad read happens to hit the synced block's check depends on timing; when one does, it must stay a
      // suspicion (rollbacks are 0 above). unit/guarantees.ts makes that case happen on purpose, one read and a burst.
      expect(await keeper.metric("keeper_reorg_suspicions_total", { confirmed: "true" }), "confirmed reorgs").to.equal(
        0,
      );
    });

    it("fails over from an endpoint that is behind or rate-limited, and broadcasts to every endpoint", async function () {
      scenario = await Scenario.start({
        chain: { automine: false, intervalMs: 500 },
        subscriptions: EARLY,
        faults: { seed: SEED, behindBlocks: 12, headerFlakeRate: 0.05 },
        moreEndpoints: [{ seed: SEED + 1, rateLimitRate: 0.1, rateLimitStyle: "json-32005", crossRate: 0.03 }],
        config: { rpcTimeoutMs: 2000, txConfirmations: 2, rpc: { maxLagBlocks: 3 } },
      });
      const behind = scenario.proxy;
      const current = scenario.moreProxies[0];
      let lag = 0;
      await runBilling(scenario, async (_month, running) => {
        lag = Math.max(
          lag,
          await running.metric("keeper_rpc_endpoint_head_lag_blocks", { endpoint: `#0 ${behind.url}` }),
        );
      });
      console.log(
        `      behind: ${JSON.stringify(behind.injected)} getLogs=${behind.received.get("eth_getLogs") ?? 0}; current: ${JSON.stringify(current.injected)} getLogs=${current.received.get("eth_getLogs") ?? 0}; lag of #0 ${lag}`,
      );
      // Set aside for reads once seen more than maxLagBlocks behind (heads are read at different moments).
      expect(lag, "the endpoint behind is seen more than maxLagBlocks (3) behind").to.be.greaterThan(3);
      expect(current.injected.rateLimited, "rate limits on the other endpoint").to.be.greaterThan(0);
      // Every signed transaction reaches both endpoints: a copy refused for a rate limit is sent again in the
      // background after the pause, possibly after the transaction is final (the last one just was).
      const hashesAt = (proxy: typeof behind) => new Set(proxy.transactions.map((tx) => tx.hash));
      const signed = scenario.signedByOperator.bind(scenario);
      const missing = () => signed().filter((tx) => !hashesAt(behind).has(tx.hash) || !hashesAt(current).has(tx.hash));
      expect(signed().length).to.be.greaterThan(0);
      for (const deadline = Date.now() + 10_000; missing().length > 0 && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(missing()).to.deep.equal([]);
    });
  });
});
