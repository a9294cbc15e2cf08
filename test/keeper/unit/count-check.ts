// The sync's independent check against chain truth: the contract's subscription count at the synced block against
// the store's rows. A store that missed a Subscribed event (a provider hid it from logs and blooms alike) shows a gap.
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";
import { pino } from "pino";

import { RpcClient } from "../../../keeper/src/rpc.js";
import { type CountCheck, SubscriptionCountCheck } from "../../../keeper/src/sync/count-check.js";
import { openTestStore, testEventSync } from "../support/keeper-parts.js";
import { deployThreeSubscriptions } from "../support/three-subscriptions.js";

const { ethers, networkHelpers, provider } = await network.create();

describe("Keeper subscription count check", function () {
  this.timeout(60_000);

  it("finds no gap after a full sync, the gap of a missed Subscribed event, and agreement again once resynced", async function () {
    const d = await deployThreeSubscriptions({ ethers, networkHelpers }, Wallet.createRandom().address);
    const db = await openTestStore(d.billingAddress);
    const rpc = new RpcClient(provider);
    const sync = testEventSync(db, rpc, d);
    const lines: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line).msg as string) });
    const results: CountCheck[] = [];
    const check = new SubscriptionCountCheck(db, rpc, d.billingAddress, logger, (r) => results.push(r), 1000);
    try {
      const { cursor } = await sync.catchUp(100, () => false);
      expect(await check.maybeCheck(cursor, 10_000)).to.deep.equal({ block: cursor, onChain: 3, stored: 3 });
      expect(await check.maybeCheck(cursor, 10_500), "at most once per interval").to.equal(undefined);

      // The store lost subscription 2's Subscribed event (as if a provider had hidden it).
      await db.query("DELETE FROM subscriptions WHERE id = 2");
      expect(await check.maybeCheck(cursor, 20_000)).to.deep.equal({ block: cursor, onChain: 3, stored: 2 });
      expect(lines.at(-1)).to.equal(
        `store holds 2 subscriptions, the contract counted 3 at block ${cursor}: Subscribed events were missed (a provider hid logs); resync the store (keeper README, Operations notes)`,
      );

      // The count is read at the synced block, not the head: a subscription made since is not a gap yet.
      await db.query(
        "INSERT INTO subscriptions SELECT 2, merchant_id, customer, plan_id, token, amount, period, max_charges, status, next_charge_at, charge_count, past_due_since, retry_at, max_backlog FROM subscriptions WHERE id = 1",
      );
      await d.billing.connect(d.customers[0]).subscribe(1n);
      expect(await check.maybeCheck(cursor, 30_000)).to.deep.equal({ block: cursor, onChain: 3, stored: 3 });
      expect(lines.at(-1)).to.equal("store and contract agree on the subscription count again");
      expect(results.map((r) => r.onChain - r.stored)).to.deep.equal([0, 1, 0]);
    } finally {
      await db.close();
    }
  });
});
