// An independent check of the sync, on chain truth rather than on the provider's logs: the contract counts its
// subscriptions (`subscriptionCount`), the store holds one row per `Subscribed` event. A provider whose log index and
// blooms both lie would hide events from every other check; this one sees the gap.
import { Interface } from "ethers";
import type { Logger } from "pino";

import type { RpcClient } from "../rpc.js";
import { type Db, toNumber } from "../store/db.js";

const billing = new Interface(["function subscriptionCount() view returns (uint64)"]);

/** What one check found: the contract's count at `block` and the store's. */
export interface CountCheck {
  block: number;
  onChain: number;
  stored: number;
}

/**
 * Compares the contract's subscription count at the synced block with the store's, at most once per `intervalMs`.
 * A store that holds fewer subscriptions than the contract counted missed `Subscribed` events: logged with both
 * figures and reported through `onResult` (the `keeper_store_subscription_gap` gauge); the operator resyncs.
 */
export class SubscriptionCountCheck {
  private lastAt = 0;
  private lastGap = 0;

  constructor(
    private readonly db: Db,
    private readonly rpc: Pick<RpcClient, "call">,
    private readonly billingAddress: string,
    private readonly logger: Logger,
    private readonly onResult: (check: CountCheck) => void,
    private readonly intervalMs = 60_000,
  ) {}

  /** Runs the check when due; a node that cannot answer for `cursor` (no state kept) is skipped quietly. */
  async maybeCheck(cursor: number, now = Date.now()): Promise<CountCheck | undefined> {
    if (now - this.lastAt < this.intervalMs) return undefined;
    this.lastAt = now;
    let onChain: number;
    try {
      const data = await this.rpc.call(
        { to: this.billingAddress, data: billing.encodeFunctionData("subscriptionCount") },
        cursor,
      );
      onChain = Number(billing.decodeFunctionResult("subscriptionCount", data)[0]);
    } catch (err) {
      this.logger.debug({ error: (err as Error).message, block: cursor }, "subscription count check skipped");
      return undefined;
    }
    const [row] = await this.db.query<{ count: unknown }>("SELECT count(*) AS count FROM subscriptions");
    const check = { block: cursor, onChain, stored: toNumber(row.count) };
    const gap = check.onChain - check.stored;
    if (gap !== 0 && gap !== this.lastGap) {
      this.logger.error(
        check,
        `store holds ${check.stored} subscriptions, the contract counted ${check.onChain} at block ${cursor}: ` +
          "Subscribed events were missed (a provider hid logs); resync the store (keeper README, Operations notes)",
      );
    } else if (gap === 0 && this.lastGap !== 0) {
      this.logger.info(check, "store and contract agree on the subscription count again");
    }
    this.lastGap = gap;
    this.onResult(check);
    return check;
  }
}
