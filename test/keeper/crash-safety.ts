import { expect } from "chai";

import { MONTH } from "./support/billing-setup.js";
import { seededRandom } from "./support/fault-proxy.js";
import type { KeeperProcess } from "./support/keeper-process.js";
import { Scenario } from "./support/scenario.js";

const SEED = Number(process.env.KEEPER_TEST_SEED ?? 20240601);
const SUBSCRIPTIONS = 200;
const MONTHS = 12;
const KILLS = 4;

describe("Keeper (process)", function () {
  describe("crash safety", function () {
    this.timeout(150_000);
    let scenario: Scenario;

    before(async function () {
      // Blocks every 100 ms and no automine: charges sit in the mempool for a while, so kills land mid-flight.
      scenario = await Scenario.start({ chain: { automine: false, intervalMs: 100 }, subscriptions: SUBSCRIPTIONS });
    });

    after(async function () {
      await scenario?.stop();
    });

    it("charges every due period exactly once over a year of monthly billing despite SIGKILLs at random moments", async function () {
      const random = seededRandom(SEED);
      // Kill moments: a month and a delay after that month's due date, drawn from the seed so a failure replays.
      const kills = Array.from({ length: KILLS }, () => ({
        month: 1 + Math.floor(random() * MONTHS),
        afterMs: Math.floor(random() * 1500),
      }));
      console.log(`      seed ${SEED} (KEEPER_TEST_SEED), kills ${JSON.stringify(kills)}`);

      let keeper: KeeperProcess = await scenario.startKeeper();
      for (let month = 1; month <= MONTHS; month++) {
        await scenario.chain.warp(MONTH);
        for (const kill of kills.filter((k) => k.month === month).sort((a, b) => a.afterMs - b.afterMs)) {
          await new Promise((resolve) => setTimeout(resolve, kill.afterMs));
          const exit = await keeper.kill("SIGKILL");
          expect(exit.signal).to.equal("SIGKILL");
          keeper = await scenario.startKeeper();
        }
        await scenario.waitForCharges(SUBSCRIPTIONS * (month + 1), 60_000, keeper);
      }

      await keeper.waitForMetric("keeper_pending_txs", (pending) => pending === 0, 30_000);
      expect(await scenario.problems(MONTHS + 1)).to.deep.equal([]);
      expect(scenario.signedByOperator().length, "charges sent through the recording proxy").to.be.greaterThan(0);
      expect(await keeper.metric("keeper_operator_registered")).to.equal(1);

      const exit = await keeper.kill("SIGTERM");
      expect(exit, `graceful stop:\n${keeper.describe()}`).to.deep.equal({ code: 0, signal: null });
    });
  });
});
