import { expect } from "chai";

import { MONTH } from "./support/billing-setup.js";
import { Scenario } from "./support/scenario.js";

const SEED = Number(process.env.KEEPER_TEST_SEED ?? 7);
const SUBSCRIPTIONS = 60;
const MONTHS = 3;
// Below the keeper's first range (16 blocks) and below 12, where one time-out (shrink to 8, then grow to at most
// three quarters of the 16 refused) would hold its ranges: a range is refused whatever the faults' timing.
const MAX_LOG_RANGE = 10;

describe("Keeper (process)", function () {
  describe("behind a faulty RPC endpoint", function () {
    this.timeout(120_000);
    let scenario: Scenario;

    before(async function () {
      console.log(`      seed ${SEED} (KEEPER_TEST_SEED)`);
      scenario = await Scenario.start({
        // Half-second blocks: under these fault rates a catch-up step takes a while, and the point here is
        // correctness, not keeping up with a chain 20x faster than mainnet.
        chain: { automine: false, intervalMs: 500 },
        subscriptions: SUBSCRIPTIONS,
        faults: {
          seed: SEED,
          errorRate: 0.1,
          stallRate: 0.02,
          stallMs: 2500,
          maxLogRange: MAX_LOG_RANGE,
          // Every accepted send loses its answer: the keeper must find out from the chain what it sent.
          dropSendRate: 1,
        },
        config: { rpcTimeoutMs: 1000, logRange: { initial: 2000, min: 1, max: 10000 } },
      });
      // History longer than the proxy's log range, so the first sync must shrink its range to get anywhere.
      await scenario.chain.mine(4 * MAX_LOG_RANGE);
    });

    after(async function () {
      await scenario?.stop();
    });

    it("syncs past ranges refused with 'more than 10000 results' by shrinking them", async function () {
      const keeper = await scenario.startKeeper();
      const head = await scenario.chain.blockNumber();
      await keeper.waitForMetric("keeper_synced_block", (block) => block >= head - 2, 60_000);
      expect(scenario.proxy.injected.tooManyResults).to.be.greaterThan(0);
      await keeper.kill("SIGTERM");
    });

    it("charges every due period exactly once through errors, stalls and dropped send responses", async function () {
      const keeper = await scenario.startKeeper();
      for (let month = 1; month <= MONTHS; month++) {
        await scenario.chain.warp(MONTH);
        await scenario.waitForCharges(SUBSCRIPTIONS * (month + 1), 60_000, keeper);
      }
      // The last months' faults must not leave anything behind once the endpoint behaves again.
      scenario.proxy.policy = { seed: SEED };
      await keeper.waitForMetric("keeper_pending_txs", (pending) => pending === 0, 30_000);

      expect(await scenario.problems(MONTHS + 1)).to.deep.equal([]);
      const { injected } = scenario.proxy;
      console.log(`      injected ${JSON.stringify(injected)}`);
      expect(injected.errors, "errors injected").to.be.greaterThan(0);
      expect(injected.stalls, "requests stalled past the keeper's timeout").to.be.greaterThan(0);
      expect(injected.droppedSends, "send responses dropped").to.be.greaterThan(0);
      expect(await keeper.metric("keeper_rpc_errors_total"), "failed calls are counted").to.be.greaterThan(0);
      expect(keeper.running, "no crash").to.equal(true);
    });
  });
});
