import { expect } from "chai";

import { MONTH, SAFE } from "./support/billing-setup.js";
import { Scenario } from "./support/scenario.js";

const SUBSCRIPTIONS = 20;

describe("Keeper (process)", function () {
  describe("reorgs", function () {
    this.timeout(120_000);
    let scenario: Scenario;

    before(async function () {
      // Manual mining: the test decides what every block contains.
      scenario = await Scenario.start({ chain: { automine: false }, subscriptions: SUBSCRIPTIONS });
    });

    after(async function () {
      await scenario?.stop();
    });

    /** Mines one block at a time until `done` holds, giving the keeper time to react between blocks. */
    async function mineUntil(done: () => Promise<boolean>, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error("condition not reached while mining");
        await scenario.chain.mine();
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    }

    it("re-sends a charge that a reorg removed, and its state follows the new chain", async function () {
      const { chain } = scenario;
      const keeper = await scenario.startKeeper();
      await mineUntil(async () => (await keeper.metric("keeper_synced_block")) >= (await chain.blockNumber()) - 2);

      await chain.warp(MONTH);
      const forkPoint = await chain.snapshot();

      // The keeper charges month 1 on the soon-to-be-orphaned branch; the branch grows past its confirmations.
      await mineUntil(async () => (await scenario.charges()).length === 2 * SUBSCRIPTIONS);
      const orphaned = await scenario.charges();
      await mineUntil(async () => (await keeper.metric("keeper_synced_block")) >= orphaned.at(-1)!.blockNumber + 1);
      expect(await keeper.metric("keeper_charges_confirmed_total")).to.be.at.least(SUBSCRIPTIONS);

      // Replace the branch with a longer one in which the charge never happened and its transactions are gone.
      await chain.revert(forkPoint);
      for (const hash of await chain.pendingTransactionHashes()) await chain.dropTransaction(hash);
      await chain.rpc("eth_sendTransaction", [{ from: SAFE, to: SAFE, value: "0x1" }]);
      await chain.mine(1);
      expect((await scenario.charges()).length).to.equal(SUBSCRIPTIONS, "month 1 is unpaid on the new branch");
      const sentBeforeReorg = scenario.signedByOperator().length;

      await mineUntil(async () => (await scenario.charges()).length === 2 * SUBSCRIPTIONS, 60_000);
      expect(scenario.signedByOperator().length, "the charge was sent again").to.be.greaterThan(sentBeforeReorg);
      expect(await keeper.metric("keeper_reorgs_total")).to.be.at.least(1);

      // Converged: the next month is charged once more, exactly once, from the keeper's rolled-back state.
      await chain.warp(MONTH);
      await mineUntil(async () => (await scenario.charges()).length === 3 * SUBSCRIPTIONS, 60_000);
      await mineUntil(async () => (await keeper.metric("keeper_pending_txs")) === 0);
      await chain.mine(3);
      expect(await scenario.problems(3)).to.deep.equal([]);
      expect(keeper.running).to.equal(true);
    });
  });
});
