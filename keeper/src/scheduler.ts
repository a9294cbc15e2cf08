// Scheduler: picks subscriptions due by CHAIN time from the store, re-checks each on chain (`areDue`), sizes a
// `chargeMany` batch to the gas budget by its estimate on the latest block (the estimate is also the simulation of the
// whole call), and only then hands it to the tx manager, which reserves the nonce. A batch whose simulation reverts is
// bisected: the items that fail on their own are quarantined, the others are sent.
import type { Logger } from "pino";

import { decodeBoolArray, encodeRefsCall, type SubscriptionRef } from "./calldata.js";
import { billingInterface, eventNameOf } from "./sync/decode.js";
import type { Leases } from "./leases.js";
import { notQuarantined, type Quarantine } from "./quarantine.js";
import { classifyRpcError, mapLimit, type RpcClient, type RpcReceipt } from "./rpc.js";
import { type Db, toBigInt, withExclusionMemory } from "./store/index.js";
import type { TxManager } from "./tx-manager.js";

export type { SubscriptionRef } from "./calldata.js";

/** The ABI tuple of a ref, in the contract's field order. */
const refTuple = (ref: SubscriptionRef) => [ref.id, ref.customer, ref.amount, ref.token];

/** The refs of `ids` from the store, in the order of `ids` (ids the store does not know are left out). */
export async function loadRefs(db: Db, ids: readonly bigint[]): Promise<SubscriptionRef[]> {
  if (ids.length === 0) return [];
  const rows = await db.query<{ id: unknown; customer: string; amount: unknown; token: string }>(
    "SELECT id, customer, amount, token FROM subscriptions WHERE id = ANY($1::text[]::bigint[])",
    [ids.map(String)],
  );
  const byId = new Map(
    rows.map((row) => [
      toBigInt(row.id),
      { id: toBigInt(row.id), customer: row.customer, amount: BigInt(String(row.amount)), token: row.token },
    ]),
  );
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/**
 * The first `limit` subscriptions due at `chainNow` by the store's view, oldest due first: not in `inFlight`, not
 * backing off, not quarantined, merchant not known to be paused. Bounded by `limit` (the partial index
 * `subscriptions_due` is read in order), so its cost follows the batch, not the number of subscriptions.
 */
export async function dueSubscriptionIds(
  db: Db,
  chainNow: bigint,
  inFlight: readonly string[],
  limit: number,
): Promise<bigint[]> {
  // NOT IN over a subquery is a hashed anti-join, given the memory to hash the list; `id = ANY(array)` would scan
  // the whole array for every row.
  const rows = await withExclusionMemory(db, inFlight.length, (tx) =>
    tx.query<{ id: unknown }>(
      `SELECT s.id FROM subscriptions s
     WHERE s.status IN ('active', 'past_due') AND s.next_charge_at <= $1 AND s.retry_at <= $1
       AND s.id NOT IN (SELECT unnest($2::text[]::bigint[]))
       AND NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = s.merchant_id AND m.paused)
       AND ${notQuarantined(1)}
     ORDER BY s.next_charge_at, s.id LIMIT $3`,
      [chainNow.toString(), inFlight, limit],
    ),
  );
  return rows.map((row) => toBigInt(row.id));
}

export interface SchedulerOptions {
  billingAddress: string;
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
  /** Where items whose charge cannot be simulated are set aside. */
  quarantine: Quarantine;
}

export interface SchedulerHooks {
  onRegistered?(registered: boolean): void;
  onOutcome?(outcome: { confirmed: number; failed: number }): void;
  /** The quarantined ids after a change (new items quarantined or released). */
  onQuarantine?(ids: readonly bigint[]): void;
}

/** What one final charge transaction did, per subscription, from its receipt's events. */
export function chargeOutcome(receipt: RpcReceipt, billingAddress: string, subscriptionIds: readonly bigint[]) {
  const charged: bigint[] = [];
  const failed: bigint[] = [];
  const skipped: bigint[] = [];
  if (receipt.status !== 1) return { charged, failed: [...subscriptionIds], skipped, paymentFailed: [] as bigint[] };
  const paymentFailed: bigint[] = [];
  const billing = billingAddress.toLowerCase();
  for (const log of receipt.logs) {
    if (log.address !== billing) continue;
    // Every outcome event has the subscription id as its first indexed topic.
    const name = eventNameOf(log);
    if (name === undefined || log.topics.length < 2) continue;
    const id = BigInt(log.topics[1]);
    if (name === "Charged") charged.push(id);
    else if (name === "ChargeFailed") {
      failed.push(id);
      paymentFailed.push(id);
    } else if (name === "SubscriptionLapsed") failed.push(id);
    else if (name === "ChargeSkipped") skipped.push(id);
  }
  return { charged, failed, skipped, paymentFailed };
}

/** `RecurringBilling.Status.PastDue`: the `status` field of `getSubscription`. */
const PAST_DUE = 2;
/**
 * Batches one instance claims at a time on a shared store, so the instances split the work instead of one taking
 * all. With one keeper every free slot is one wave: waves of 4 were measured slower (10,000 charges: 45 blocks instead
 * of 5) while estimates ran on the pending block, where each one first executed the earlier waves; not re-measured
 * since estimates name the latest block.
 */
const SHARED_BATCHES_PER_CLAIM = 4;
/** Ids per `areDue` call (well within an eth_call's gas cap). */
const ARE_DUE_CHUNK = 500;

interface SizedBatch {
  refs: SubscriptionRef[];
  data: string;
  /** The simulation's gas estimate. */
  gas: bigint;
  gasLimit: bigint;
}

/** Share of the gas budget a batch is sized to fill (state may change a little before inclusion). */
const BUDGET_FILL_PERCENT = 95n;

type Simulation = { ok: true; gas: bigint } | { ok: false; kind: string; error: string };

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class Scheduler {
  /** Whether the contract has `areDue` (unknown until the first call). */
  private hasAreDue?: boolean;
  /**
   * Items a batch of the gas budget holds, by the last full batch's estimate: a wave reads and checks that many
   * candidates per free slot instead of `maxItems`, and its first simulation usually fits at once (one
   * `eth_estimateGas` per batch, not one over budget and one scaled down).
   */
  private batchItems?: number;

  constructor(
    private readonly db: Db,
    private readonly rpc: RpcClient,
    private readonly txManager: TxManager,
    private readonly options: SchedulerOptions,
    private readonly logger: Logger,
    private readonly hooks: SchedulerHooks = {},
  ) {}

  /** Whether the billing contract counts the keeper's key as an operator (its copy of the registry's set). */
  async isRegistered(): Promise<boolean> {
    const data = billingInterface.encodeFunctionData("isOperator", [this.options.operator]);
    const result = await this.rpc.call({ to: this.options.billingAddress, data });
    const [registered] = billingInterface.decodeFunctionResult("isOperator", result);
    return registered as boolean;
  }

  /**
   * Sends charges for what is due now; returns how many transactions it sent. Every free transaction slot is filled
   * in one pass: per wave (all free slots; {@link SHARED_BATCHES_PER_CLAIM} per claim on a shared store) one candidate
   * query, one `areDue` call per chunk, the batches simulated in parallel, then all signed, stored in one store
   * transaction and broadcast (blocks fill up to the gas limit).
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
    const waveSlots = this.options.leases ? SHARED_BATCHES_PER_CLAIM : slots;
    let sent = 0;
    while (sent < slots && !shouldStop()) {
      const wave = await this.sendWave(chainNow, inFlight, Math.min(slots - sent, waveSlots));
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
    const candidates = await this.dueCandidates(chainNow, inFlight, slots * this.itemsPerBatchHint());
    if (candidates.length === 0) return 0;
    let sentIds: bigint[] = [];
    try {
      const due = await this.confirmDue(await loadRefs(this.db, candidates), chainNow);
      if (due.length === 0) return 0;
      const batches = await this.sizeBatches(due, slots, chainNow);
      if (batches.length === 0) return 0;
      const ids = batches.flatMap((batch) => batch.refs.map((ref) => ref.id));
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
          subscriptionIds: batch.refs.map((ref) => ref.id),
        })),
      );
      sentIds = batches.slice(0, sent.length).flatMap((batch) => batch.refs.map((ref) => ref.id));
      inFlight.push(...sentIds.map(String));
      return sent.length;
    } finally {
      // Claimed and not sent (not due, cut from a batch, or nothing sent): free for any instance again.
      const sentSet = new Set(sentIds);
      await leases?.releaseWork(candidates.filter((id) => !sentSet.has(id)));
    }
  }

  /** Candidates to read per batch: what the gas budget fits by the last full batch's estimate, at most `maxItems`. */
  private itemsPerBatchHint(): number {
    return Math.min(this.options.maxItems, this.batchItems ?? this.options.maxItems);
  }

  /** Items of the batch's kind that fill the budget, scaled from its estimate (gas grows about linearly). */
  private itemsFillingBudget(batch: SizedBatch): number {
    const items = (BigInt(batch.refs.length) * this.options.gasBudget * BUDGET_FILL_PERCENT) / (batch.gas * 100n);
    return Math.max(1, Number(items));
  }

  /**
   * Due by the store's view (chain time), not in flight, not quarantined, merchant not known to be paused; claimed
   * with leases.
   */
  private async dueCandidates(chainNow: bigint, inFlight: string[], limit: number): Promise<bigint[]> {
    if (this.options.leases) {
      return this.options.leases.claimDue({ chainNow, exclude: inFlight.map(BigInt), limit });
    }
    return dueSubscriptionIds(this.db, chainNow, inFlight, limit);
  }

  /** `areDue` for every candidate, a chunk per call; falls back to `isDue` per ref on a contract without it. */
  private async areDue(candidates: SubscriptionRef[]): Promise<boolean[]> {
    const to = this.options.billingAddress;
    if (this.hasAreDue !== false) {
      try {
        const chunks = await mapLimit(chunk(candidates, ARE_DUE_CHUNK), 4, async (refs) =>
          decodeBoolArray(await this.rpc.call({ to, data: encodeRefsCall("areDue", refs) }), refs.length),
        );
        this.hasAreDue = true;
        return chunks.flat();
      } catch (err) {
        if (this.hasAreDue === true || classifyRpcError(err) !== "reverted") throw err;
        this.hasAreDue = false;
        this.logger.info("the billing contract has no areDue: checking candidates one by one");
      }
    }
    return mapLimit(candidates, 16, async (ref) => {
      const data = billingInterface.encodeFunctionData("isDue", [refTuple(ref)]);
      return billingInterface.decodeFunctionResult("isDue", await this.rpc.call({ to, data }))[0] as boolean;
    });
  }

  /**
   * Keeps the candidates the contract says are due, and the past-due ones whose grace period is over (a charge
   * attempt is what lapses them on chain, and the SubscriptionLapsed event is what ends them in every indexer);
   * the others are set aside for a while. Grace runs on the contract's billing clock (paused time does not count),
   * so the chain says when it is over (`graceRemaining`), not the keeper's clock.
   */
  private async confirmDue(candidates: SubscriptionRef[], chainNow: bigint): Promise<SubscriptionRef[]> {
    const view = async (name: "getSubscription" | "graceRemaining", ref: SubscriptionRef) =>
      billingInterface.decodeFunctionResult(
        name,
        await this.rpc.call({
          to: this.options.billingAddress,
          data: billingInterface.encodeFunctionData(name, [refTuple(ref)]),
        }),
      )[0] as { status: bigint; nextChargeAt: bigint } & bigint;
    const isDue = await this.areDue(candidates);
    const verdicts = await mapLimit(candidates, 16, async (ref, i) => {
      if (isDue[i]) return true;
      const sub = await view("getSubscription", ref);
      if (Number(sub.status) !== PAST_DUE || sub.nextChargeAt > chainNow) return false;
      // Past due and not due by `areDue`: either the merchant is paused (the clock stops, no lapse) or grace is over.
      return (await view("graceRemaining", ref)) === 0n;
    });
    const due = candidates.filter((_, i) => verdicts[i]);
    const notDue = candidates.filter((_, i) => !verdicts[i]);
    if (notDue.length > 0) {
      const recheckAt = chainNow + BigInt(this.options.notDueRecheckSeconds ?? 60);
      await this.db.query("UPDATE subscriptions SET retry_at = $2 WHERE id = ANY($1::text[]::bigint[])", [
        notDue.map((ref) => String(ref.id)),
        recheckAt.toString(),
      ]);
      this.logger.debug({ count: notDue.length }, "store said due, chain said not: rechecking later");
    }
    return due;
  }

  /**
   * Up to `slots` batches of the due refs, each simulated and within the gas budget. The first batch sets the size
   * (scaled to the budget by its estimate); the others are simulated in parallel; items cut from a batch wait for
   * the next tick. Items whose simulation fails on their own are quarantined on the way, so a bad item at the head
   * of the due list never stops the ones behind it.
   */
  private async sizeBatches(due: SubscriptionRef[], slots: number, chainNow: bigint): Promise<SizedBatch[]> {
    const quarantined = new Set<bigint>();
    let rest = due;
    let first: SizedBatch | undefined;
    const hint = this.itemsPerBatchHint();
    let offered = 0;
    while (first === undefined && rest.length > 0) {
      const head = rest.slice(0, hint);
      offered = head.length;
      const sized = await this.sizeBatch(head, chainNow, quarantined);
      if (sized === "failed") return [];
      first = sized;
      // Everything in the head was quarantined: the next items get their turn now, not at the next tick.
      if (first === undefined) rest = rest.slice(head.length);
    }
    if (first === undefined) return [];
    // A batch the gas budget cut tells the size; a full one that fitted may grow; a short one had fewer due items.
    if (first.refs.length < offered || offered === hint) this.batchItems = this.itemsFillingBudget(first);
    const taken = new Set(first.refs.map((ref) => ref.id));
    const remaining = rest.filter((ref) => !taken.has(ref.id) && !quarantined.has(ref.id));
    const others = chunk(remaining, first.refs.length).slice(0, slots - 1);
    const sized = await mapLimit(others, 4, (refs) => this.sizeBatch(refs, chainNow, quarantined));
    const batches = [first];
    for (const batch of sized) {
      if (batch === "failed" || batch === undefined) break;
      batches.push(batch);
    }
    return batches;
  }

  /**
   * The largest prefix of `refs` whose estimated gas fits the budget, with its gas limit. A reverting simulation is
   * bisected to find the items that fail on their own: they are quarantined and the batch goes on without them.
   * Undefined when every item was quarantined; "failed" when the node could not simulate for another reason.
   */
  private async sizeBatch(
    refs: SubscriptionRef[],
    chainNow: bigint,
    quarantined: Set<bigint>,
  ): Promise<SizedBatch | undefined | "failed"> {
    let batch = refs;
    let simulation = await this.simulate(batch);
    for (;;) {
      if (!simulation.ok) {
        if (simulation.kind !== "reverted") {
          this.logger.error(
            { kind: simulation.kind, error: simulation.error, items: batch.length },
            "chargeMany simulation failed: not sending",
          );
          return "failed";
        }
        const { good, bad } = await this.bisect(batch, simulation);
        // The halves failed for another reason (the node, not the items): nothing to learn, try again next tick.
        if (good.length === 0 && bad.length === 0) return "failed";
        if (bad.length > 0) await this.quarantine(bad, chainNow);
        for (const item of bad) quarantined.add(item.ref.id);
        // No single item fails alone but together they do: send the half that simulates, the rest waits.
        batch = bad.length > 0 ? good : good.slice(0, Math.ceil(good.length / 2));
        if (batch.length === 0) return undefined;
        simulation = await this.simulate(batch);
        continue;
      }
      if (simulation.gas > this.options.gasBudget && batch.length > 1) {
        // Gas grows about linearly with the items: scale to the budget (with 5% to spare), at least one fewer.
        const scaled = Number(
          (BigInt(batch.length) * this.options.gasBudget * BUDGET_FILL_PERCENT) / (simulation.gas * 100n),
        );
        batch = batch.slice(0, Math.max(1, Math.min(scaled, batch.length - 1)));
        simulation = await this.simulate(batch);
        continue;
      }
      await this.releaseQuarantine(batch);
      // Headroom: state may change a little between the estimate and inclusion.
      return {
        refs: batch,
        data: this.encode(batch),
        gas: simulation.gas,
        gasLimit: (simulation.gas * 12n) / 10n + 10_000n,
      };
    }
  }

  private encode(refs: readonly SubscriptionRef[]): string {
    return encodeRefsCall("chargeMany", refs);
  }

  /** `eth_estimateGas` of `chargeMany(refs)` from the operator: the simulation of the whole call. */
  private async simulate(refs: readonly SubscriptionRef[]): Promise<Simulation> {
    try {
      const data = this.encode(refs);
      return {
        ok: true,
        gas: await this.rpc.estimateGas({ from: this.options.operator, to: this.options.billingAddress, data }),
      };
    } catch (err) {
      return { ok: false, kind: classifyRpcError(err), error: (err as Error).message };
    }
  }

  /**
   * Splits a batch whose simulation reverted into the items that simulate (`good`, each half known to simulate on
   * its own) and the single items that revert alone (`bad`), with a failure reason per bad item. Halves recursively:
   * about 2·log2(n) simulations per bad item.
   */
  private async bisect(
    refs: SubscriptionRef[],
    failure: Simulation & { ok: false },
  ): Promise<{ good: SubscriptionRef[]; bad: { ref: SubscriptionRef; error: string }[] }> {
    if (refs.length === 1) return { good: [], bad: [{ ref: refs[0], error: failure.error }] };
    const middle = Math.ceil(refs.length / 2);
    const halves = [refs.slice(0, middle), refs.slice(middle)];
    const good: SubscriptionRef[] = [];
    const bad: { ref: SubscriptionRef; error: string }[] = [];
    for (const half of halves) {
      const simulation = await this.simulate(half);
      if (simulation.ok) {
        good.push(...half);
        continue;
      }
      if (simulation.kind !== "reverted") continue; // not the items' fault: they wait for the next tick
      const split = await this.bisect(half, simulation);
      good.push(...split.good);
      bad.push(...split.bad);
    }
    return { good, bad };
  }

  private async quarantine(bad: { ref: SubscriptionRef; error: string }[], chainNow: bigint): Promise<void> {
    const { quarantine } = this.options;
    const entries = await quarantine.add(
      bad.map((item) => item.ref.id),
      chainNow,
      bad[0].error,
    );
    const ids = entries.map((entry) => entry.id.toString());
    this.logger.warn(
      {
        quarantined: ids,
        retryAt: entries.map((entry) => entry.retryAt.toString()),
        failures: entries.map((entry) => entry.failures),
        error: bad[0].error,
      },
      `quarantined subscriptions ${ids.join(", ")}: their charge fails in simulation; billing the others`,
    );
    this.hooks.onQuarantine?.(await quarantine.ids());
  }

  /** Items in a batch that simulated are quarantined no more. */
  private async releaseQuarantine(refs: readonly SubscriptionRef[]): Promise<void> {
    const released = await this.options.quarantine.release(refs.map((ref) => ref.id));
    if (released.length === 0) return;
    this.logger.info({ released: released.map(String) }, "quarantined subscriptions simulate again: released");
    this.hooks.onQuarantine?.(await this.options.quarantine.ids());
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
