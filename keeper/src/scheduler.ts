// Scheduler: picks subscriptions due by CHAIN time from the store, re-checks each on chain (`isDue`), sizes a
// `chargeMany` batch to the gas budget by estimating and halving (the estimate is also the simulation of the whole
// call), and only then hands it to the tx manager, which reserves the nonce.
import { Interface } from "ethers";
import type { Logger } from "pino";

import { billingInterface } from "./sync/decode.js";
import type { Leases } from "./leases.js";
import { classifyRpcError, mapLimit, type RpcClient, type RpcReceipt } from "./rpc.js";
import { type Db, toBigInt } from "./store/index.js";
import type { TxManager } from "./tx-manager.js";

const registryInterface = new Interface(["function isOperator(address account) view returns (bool)"]);

export interface SchedulerOptions {
  billingAddress: string;
  registryAddress: string;
  operator: string;
  gasBudget: bigint;
  maxItems: number;
  maxPendingTxs: number;
  /** Chain seconds before a subscription whose charge failed is tried again. */
  pastDueRetrySeconds: number;
  /** Chain seconds before a subscription the chain said was not due is looked at again. */
  notDueRecheckSeconds?: number;
  /**
   * Work leases shared with other keeper instances: candidates are claimed (disjoint between instances) and stay
   * claimed until their transaction is final. Without it, candidates are read from the store (one keeper).
   */
  leases?: Leases;
}

export interface SchedulerHooks {
  onRegistered?(registered: boolean): void;
  onOutcome?(outcome: { confirmed: number; failed: number }): void;
}

/** What one final charge transaction did, per subscription, from its receipt's events. */
export function chargeOutcome(receipt: RpcReceipt, billingAddress: string, subscriptionIds: readonly bigint[]) {
  const charged: bigint[] = [];
  const failed: bigint[] = [];
  const skipped: bigint[] = [];
  if (receipt.status !== 1) return { charged, failed: [...subscriptionIds], skipped, paymentFailed: [] as bigint[] };
  const paymentFailed: bigint[] = [];
  for (const log of receipt.logs) {
    if (log.address !== billingAddress.toLowerCase()) continue;
    const parsed = billingInterface.parseLog({ topics: log.topics, data: log.data });
    if (!parsed) continue;
    const id = parsed.args[0] as bigint;
    if (parsed.name === "Charged") charged.push(id);
    else if (parsed.name === "ChargeFailed") {
      failed.push(id);
      paymentFailed.push(id);
    } else if (parsed.name === "SubscriptionLapsed") failed.push(id);
    else if (parsed.name === "ChargeSkipped") skipped.push(id);
  }
  return { charged, failed, skipped, paymentFailed };
}

/** `RecurringBilling.Status.PastDue`. */
const PAST_DUE = 2;

export class Scheduler {
  private gracePeriod?: bigint;

  constructor(
    private readonly db: Db,
    private readonly rpc: RpcClient,
    private readonly txManager: TxManager,
    private readonly options: SchedulerOptions,
    private readonly logger: Logger,
    private readonly hooks: SchedulerHooks = {},
  ) {}

  /** Whether the chain counts the keeper's key as an operator. */
  async isRegistered(): Promise<boolean> {
    const data = registryInterface.encodeFunctionData("isOperator", [this.options.operator]);
    const result = await this.rpc.call({ to: this.options.registryAddress, data });
    const [registered] = registryInterface.decodeFunctionResult("isOperator", result);
    return registered as boolean;
  }

  /** Sends charges for what is due now; returns how many transactions it sent. */
  async tick(syncedBlock: number, shouldStop: () => boolean = () => false): Promise<number> {
    const registered = await this.isRegistered();
    this.hooks.onRegistered?.(registered);
    if (!registered) return 0;
    const [paused] = billingInterface.decodeFunctionResult(
      "paused",
      await this.rpc.call({ to: this.options.billingAddress, data: billingInterface.encodeFunctionData("paused") }),
    );
    if (paused) return 0;

    let open = await this.txManager.openCount();
    if (open >= this.options.maxPendingTxs) return 0;
    const chainNow = (await this.rpc.getBlock("latest")).timestamp;
    const inFlight = (await this.txManager.inFlightSubscriptionIds(syncedBlock)).map(String);
    let sent = 0;
    const { leases } = this.options;
    while (open < this.options.maxPendingTxs && !shouldStop()) {
      const candidates = await this.dueCandidates(chainNow, inFlight);
      if (candidates.length === 0) break;
      let sentIds: bigint[] = [];
      try {
        const due = await this.confirmDue(candidates, chainNow);
        if (due.length === 0) continue;
        const batch = await this.sizeBatch(due);
        if (batch === undefined) break;
        // A claim that lapsed during the checks may have been taken by another instance: claim afresh instead.
        if (leases && (await leases.renew(batch.ids)).length !== batch.ids.length) {
          this.logger.warn({ items: batch.ids.length }, "claims lapsed before sending: claiming again");
          continue;
        }
        const result = await this.txManager.send({
          to: this.options.billingAddress,
          data: batch.data,
          gasLimit: batch.gasLimit,
          subscriptionIds: batch.ids,
        });
        if (result === undefined) break;
        sentIds = batch.ids;
        inFlight.push(...batch.ids.map(String));
        sent++;
        open++;
      } finally {
        // Claimed and not sent (not due, cut from the batch, or nothing sent): free for any instance again.
        const sentSet = new Set(sentIds);
        await leases?.releaseWork(candidates.filter((id) => !sentSet.has(id)));
      }
    }
    return sent;
  }

  /** Due by the store's view (chain time), not in flight, merchant not known to be paused; claimed with leases. */
  private async dueCandidates(chainNow: bigint, inFlight: string[]): Promise<bigint[]> {
    if (this.options.leases) {
      return this.options.leases.claimDue({ chainNow, exclude: inFlight.map(BigInt), limit: this.options.maxItems });
    }
    const rows = await this.db.query<{ id: unknown }>(
      `SELECT s.id FROM subscriptions s
       WHERE s.status IN ('active', 'past_due') AND s.next_charge_at <= $1 AND s.retry_at <= $1
         AND NOT (s.id = ANY($2::text[]::bigint[]))
         AND NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = s.merchant_id AND m.paused)
       ORDER BY s.next_charge_at, s.id LIMIT $3`,
      [chainNow.toString(), inFlight, this.options.maxItems],
    );
    return rows.map((row) => toBigInt(row.id));
  }

  /**
   * Keeps the candidates the contract says are due, and the past-due ones whose grace period is over (a charge
   * attempt is what lapses them on chain, and the SubscriptionLapsed event is what ends them in every indexer);
   * the others are set aside for a while.
   */
  private async confirmDue(candidates: bigint[], chainNow: bigint): Promise<bigint[]> {
    const view = async (name: "isDue" | "statusOf" | "pastDueSince" | "gracePeriod", args: unknown[] = []) =>
      billingInterface.decodeFunctionResult(
        name,
        await this.rpc.call({ to: this.options.billingAddress, data: billingInterface.encodeFunctionData(name, args) }),
      )[0] as bigint | boolean;
    const verdicts = await mapLimit(candidates, 16, async (id) => {
      if ((await view("isDue", [id])) === true) return true;
      if (Number(await view("statusOf", [id])) !== PAST_DUE) return false;
      this.gracePeriod ??= (await view("gracePeriod")) as bigint;
      return ((await view("pastDueSince", [id])) as bigint) + this.gracePeriod <= chainNow;
    });
    const due = candidates.filter((_, i) => verdicts[i]);
    const notDue = candidates.filter((_, i) => !verdicts[i]);
    if (notDue.length > 0) {
      const recheckAt = chainNow + BigInt(this.options.notDueRecheckSeconds ?? 60);
      await this.db.query("UPDATE subscriptions SET retry_at = $2 WHERE id = ANY($1::text[]::bigint[])", [
        notDue.map(String),
        recheckAt.toString(),
      ]);
      this.logger.debug({ count: notDue.length }, "store said due, chain said not: rechecking later");
    }
    return due;
  }

  /** The largest prefix of `ids` whose estimated gas fits the budget (halving), with its gas limit. */
  private async sizeBatch(ids: bigint[]): Promise<{ ids: bigint[]; data: string; gasLimit: bigint } | undefined> {
    let batch = ids;
    for (;;) {
      const data = billingInterface.encodeFunctionData("chargeMany", [batch]);
      let estimate: bigint;
      try {
        estimate = await this.rpc.estimateGas({ from: this.options.operator, to: this.options.billingAddress, data });
      } catch (err) {
        const kind = classifyRpcError(err);
        if (kind === "reverted" && batch.length > 1) {
          batch = batch.slice(0, Math.ceil(batch.length / 2));
          continue;
        }
        this.logger.error(
          { kind, error: (err as Error).message, items: batch.length },
          "chargeMany simulation failed: not sending",
        );
        return undefined;
      }
      if (estimate > this.options.gasBudget && batch.length > 1) {
        batch = batch.slice(0, Math.ceil(batch.length / 2));
        continue;
      }
      // Headroom: state may change a little between the estimate and inclusion.
      return { ids: batch, data, gasLimit: (estimate * 12n) / 10n + 10_000n };
    }
  }

  /** Books the outcome of a final charge transaction: metrics, and a back-off for failed payments. */
  async onFinal(tx: { nonce: number; subscriptionIds: bigint[] }, receipt: RpcReceipt): Promise<void> {
    const outcome = chargeOutcome(receipt, this.options.billingAddress, tx.subscriptionIds);
    this.hooks.onOutcome?.({ confirmed: outcome.charged.length, failed: outcome.failed.length });
    if (outcome.paymentFailed.length > 0) {
      const block = await this.rpc.getBlock(receipt.blockNumber);
      await this.db.query("UPDATE subscriptions SET retry_at = $2 WHERE id = ANY($1::text[]::bigint[])", [
        outcome.paymentFailed.map(String),
        (block.timestamp + BigInt(this.options.pastDueRetrySeconds)).toString(),
      ]);
    }
    // The store excludes them until the sync reaches the receipt's block: the claims are not needed any more.
    await this.options.leases?.releaseWork(tx.subscriptionIds);
    this.logger.info(
      {
        nonce: tx.nonce,
        charged: outcome.charged.length,
        failed: outcome.failed.length,
        skipped: outcome.skipped.length,
        status: receipt.status,
      },
      "charge outcome",
    );
  }
}
