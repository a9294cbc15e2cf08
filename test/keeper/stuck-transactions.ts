import { expect } from "chai";

import { MONTH } from "./support/billing-setup.js";
import { Scenario } from "./support/scenario.js";

const SUBSCRIPTIONS = 10;

describe("Keeper (process)", function () {
  describe("stuck transactions", function () {
    this.timeout(120_000);
    let scenario: Scenario;

    before(async function () {
      scenario = await Scenario.start({
        chain: { automine: false },
        subscriptions: SUBSCRIPTIONS,
        config: { fees: { maxFeePerGasGwei: 500, maxPriorityFeePerGasGwei: 2, bumpPercent: 15, replaceAfterMs: 1000 } },
      });
    });

    after(async function () {
      await scenario?.stop();
    });

    async function until(done: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    it("replaces a charge held out of blocks with bumped fees until one version mines, exactly once", async function () {
      const { chain } = scenario;
      const keeper = await scenario.startKeeper();
      await chain.mine(3);
      await keeper.waitForMetric("keeper_synced_block", (block) => block >= 0);
      await chain.warp(MONTH);
      await chain.mine(2);

      // Hold the mempool (no blocks) until the keeper has sent the charge and replaced it at least once.
      await until(() => scenario.signedByOperator().length > 0, "the first charge");
      const first = scenario.signedByOperator()[0];
      const versions = () => scenario.signedByOperator().filter((tx) => tx.nonce === first.nonce);
      await until(() => new Set(versions().map((tx) => tx.hash)).size >= 2, "a replacement");
      const replacement = versions().find((tx) => tx.hash !== first.hash)!;
      for (const field of ["maxFeePerGas", "maxPriorityFeePerGas"] as const) {
        expect(replacement[field]! * 100n, `${field} bumped by >= 10%`).to.be.at.least(first[field]! * 110n);
      }
      expect(await keeper.metric("keeper_tx_replacements_total")).to.be.at.least(1);

      // A base fee above what the first version pays: only a replacement can be included.
      const baseFee = first.maxFeePerGas! + 1n;
      await until(async () => {
        await chain.setNextBlockBaseFee(baseFee);
        await chain.mine();
        return (await scenario.charges()).length === 2 * SUBSCRIPTIONS;
      }, "a replacement to mine");
      const mined = (await scenario.charges()).at(-1)!.transactionHash;
      expect(mined).to.not.equal(first.hash);
      expect(versions().map((tx) => tx.hash)).to.include(mined);

      await chain.setIntervalMining(100);
      await keeper.waitForMetric("keeper_pending_txs", (pending) => pending === 0);
      expect(await scenario.problems(2)).to.deep.equal([]);
      expect(await chain.rpc("eth_getTransactionReceipt", [first.hash])).to.equal(null);
    });
  });
});
