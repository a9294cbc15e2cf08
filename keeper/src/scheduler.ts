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
/** Batches one instance claims per tick on a shared store. */
const SHARED_BATCHES_PER_TICK = 4;
/** Ids per `areDue` call (well within an eth_call's gas cap). */
const ARE_DUE_CHUNK = 500;

interface SizedBatch {
  ids: bigint[];
  data: string;
  gasLimit: bigint;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class Scheduler {
  private gracePeriod?: bigint;
  /** Whether the contract has `areDue` (unknown until the first call). */
  private hasAreDue?: boolean;

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

  /**
   * Sends charges for what is due now; returns how many transactions it sent. Every free transaction slot is filled
   * in one pass: one candidate query for all of them, one `areDue` call per chunk, the batches simulated in
   * parallel, then all signed, stored in one store transaction and broadcast (blocks fill up to the gas limit).
   */
  async tick(syncedBlock: number, shouldStop: () => boolean = () => false): Promise<number> {
    const registered = await this.isRegistered();
    this.hooks.onRegistered?.(registered);
    if (!registered) return 0;
    const [paused] = billingInterface.decodeFunctionResult(
      "paused",
      await this.rpc.call({ to: this.options.billingAddress, data: billingInterface.encodeFunctionData("paused") }),
    );
    if (paused) return 0;

    const slots = this.options.maxPendingTxs - (await this.txManager.openCount());
    if (slots <= 0 || shouldStop()) return 0;
    const chainNow = (await this.rpc.getBlock("latest")).timestamp;
    const inFlight = (await this.txManager.inFlightSubscriptionIds(syncedBlock)).map(String);
    if (!this.options.leases) return this.sendWave(chainNow, inFlight, slots);
    // Shared store: a batch per claim, a few per tick, so the instances split the work instead of one taking all.
    let sent = 0;
    for (let round = 0; round < Math.min(slots, SHARED_BATCHES_PER_TICK) && !shouldStop(); round++) {
      const wave = await this.sendWave(chainNow, inFlight, 1);
      if (wave === 0) break;
      sent += wave;
    }
    return sent;
  }

  /**
   * Claims candidates for up to `slots` batches, confirms them on chain, sizes and sends the batches. Returns how
   * many transactions it sent; their ids are added to `inFlight`.
   */
  private async sendWave(chainNow: bigint, inFlight: string[], slots: number): Promise<number> {
    const { leases } = this.options;
    const candidates = await this.dueCandidates(chainNow, inFlight, slots * this.options.maxItems);
    if (candidates.length === 0) return 0;
    let sentIds: bigint[] = [];
    try {
      const due = await this.confirmDue(candidates, chainNow);
      if (due.length === 0) return 0;
      const batches = await this.sizeBatches(due, slots);
      if (batches.length === 0) return 0;
      const ids = batches.flatMap((batch) => batch.ids);
      // A claim that lapsed during the checks may have been taken by another instance: claim afresh next time.
      if (leases && (await leases.renew(ids)).length !== ids.length) {
        this.logger.warn({ items: ids.length }, "claims lapsed before sending: claiming again");
        return 0;
      }
      const sent = await this.txManager.sendMany(
        batches.map((batch) => ({
          to: this.options.billingAddress,
          data: batch.data,
          gasLimit: batch.gasLimit,
          subscriptionIds: batch.ids,
        })),
      );
      sentIds = batches.slice(0, sent.length).flatMap((batch) => batch.ids);
      inFlight.push(...sentIds.map(String));
      return sent.length;
    } finally {
      // Claimed and not sent (not due, cut from a batch, or nothing sent): free for any instance again.
      const sentSet = new Set(sentIds);
      await leases?.releaseWork(candidates.filter((id) => !sentSet.has(id)));
    }
  }

  /** Due by the store's view (chain time), not in flight, merchant not known to be paused; claimed with leases. */
  private async dueCandidates(chainNow: bigint, inFlight: string[], limit: number): Promise<bigint[]> {
    if (this.options.leases) {
      return this.options.leases.claimDue({ chainNow, exclude: inFlight.map(BigInt), limit });
    }
    // NOT IN over a subquery is a hashed anti-join; `id = ANY(array)` would scan the whole array for every row.
    const rows = await this.db.query<{ id: unknown }>(
      `SELECT s.id FROM subscriptions s
       WHERE s.status IN ('active', 'past_due') AND s.next_charge_at <= $1 AND s.retry_at <= $1
         AND s.id NOT IN (SELECT unnest($2::text[]::bigint[]))
         AND NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = s.merchant_id AND m.paused)
       ORDER BY s.next_charge_at, s.id LIMIT $3`,
      [chainNow.toString(), inFlight, limit],
    );
    return rows.map((row) => toBigInt(row.id));
  }

  /** `areDue` for every candidate, a chunk per call; falls back to `isDue` per id on a contract without it. */
  private async areDue(candidates: bigint[]): Promise<boolean[]> {
    const call = async (name: "areDue" | "isDue", arg: unknown) =>
      billingInterface.decodeFunctionResult(
        name,
        await this.rpc.call({
          to: this.options.billingAddress,
          data: billingInterface.encodeFunctionData(name, [arg]),
        }),
      )[0] as boolean | boolean[];
    if (this.hasAreDue !== false) {
      try {
        const chunks = await mapLimit(chunk(candidates, ARE_DUE_CHUNK), 4, (ids) => call("areDue", ids));
        this.hasAreDue = true;
        return chunks.flatMap((verdicts) => [...(verdicts as boolean[])]);
      } catch (err) {
        if (this.hasAreDue === true || classifyRpcError(err) !== "reverted") throw err;
        this.hasAreDue = false;
        this.logger.info("the billing contract has no areDue: checking candidates one by one");
      }
    }
    return mapLimit(candidates, 16, async (id) => (await call("isDue", id)) as boolean);
  }

  /**
   * Keeps the candidates the contract says are due, and the past-due ones whose grace period is over (a charge
   * attempt is what lapses them on chain, and the SubscriptionLapsed event is what ends them in every indexer);
   * the others are set aside for a while.
   */
  private async confirmDue(candidates: bigint[], chainNow: bigint): Promise<bigint[]> {
    const view = async (name: "statusOf" | "pastDueSince" | "gracePeriod", args: unknown[] = []) =>
      billingInterface.decodeFunctionResult(
        name,
        await this.rpc.call({ to: this.options.billingAddress, data: billingInterface.encodeFunctionData(name, args) }),
      )[0] as bigint;
    const isDue = await this.areDue(candidates);
    const verdicts = await mapLimit(candidates, 16, async (id, i) => {
      if (isDue[i]) return true;
      if (Number(await view("statusOf", [id])) !== PAST_DUE) return false;
      this.gracePeriod ??= await view("gracePeriod");
      return (await view("pastDueSince", [id])) + this.gracePeriod <= chainNow;
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

  /**
   * Up to `slots` batches of the due ids, each simulated and within the gas budget. The first batch sets the size
   * (scaled to the budget by its estimate); the others are simulated in parallel; items cut from a batch wait for
   * the next tick.
   */
  private async sizeBatches(due: bigint[], slots: number): Promise<SizedBatch[]> {
    const first = await this.sizeBatch(due.slice(0, this.options.maxItems));
    if (first === undefined) return [];
    const rest = chunk(due.slice(first.ids.length), first.ids.length).slice(0, slots - 1);
    const others = await mapLimit(rest, 4, (ids) => this.sizeBatch(ids));
    const batches = [first];
    for (const batch of others) {
      if (batch === undefined) break;
      batches.push(batch);
    }
    return batches;
  }

  /** The largest prefix of `ids` whose estimated gas fits the budget, with its gas limit. */
  private async sizeBatch(ids: bigint[]): Promise<SizedBatch | undefined> {
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
        // Gas grows about linearly with the items: scale to the budget (with 5% to spare), at least halving.
        const scaled = Number((BigInt(batch.length) * this.options.gasBudget * 95n) / (estimate * 100n));
        batch = batch.slice(0, Math.max(1, Math.min(scaled, Math.ceil(batch.length / 2))));
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
