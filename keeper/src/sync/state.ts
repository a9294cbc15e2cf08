// Derived state (subscriptions, merchant pauses) as a pure function of the stored events: applied forward as events
// arrive and rebuilt from the remaining events for the ids a reorg touched.
import type { ChainEvent } from "../bus/event-bus.js";
import { type Db, toBigInt } from "../store/index.js";

export type SubscriptionStatus = "active" | "past_due" | "cancelled" | "lapsed" | "completed";

export interface SubscriptionState {
  id: bigint;
  merchantId: bigint;
  customer: string;
  planId: bigint;
  token: string;
  amount: string;
  period: bigint;
  maxCharges: bigint;
  /** Most periods one charge may catch up; older ones are forgiven (contract v2). */
  maxBacklog: bigint;
  status: SubscriptionStatus;
  /** When the next unpaid period falls due (after a failed charge: the unpaid period, on the forgiven schedule). */
  nextChargeAt: bigint;
  /** Periods paid. */
  chargeCount: bigint;
  /** Due time of the first period left unpaid, while past due. */
  pastDueSince: bigint | null;
  /** Scheduler back-off in chain time; cleared by a new charge. */
  retryAt: bigint;
  /**
   * The transaction that subscribed, while it is being reduced (not stored): the events of one transaction are
   * always stored together, so a completion in it is the one at subscribe.
   */
  subscribedTx?: string;
}

/** Subscription state after `event`; undefined while no Subscribed event is known. */
export function reduceSubscription(
  state: SubscriptionState | undefined,
  event: ChainEvent,
): SubscriptionState | undefined {
  const a = event.args;
  if (event.name === "Subscribed") {
    return {
      id: BigInt(a.subscriptionId as string),
      merchantId: BigInt(a.merchantId as string),
      customer: String(a.customer),
      planId: BigInt(a.planId as string),
      token: String(a.token),
      amount: String(a.amount),
      period: BigInt(a.period as string),
      maxCharges: BigInt(a.maxCharges as string),
      maxBacklog: BigInt(a.maxBacklog as string),
      status: "active",
      nextChargeAt: BigInt(a.firstChargeAt as string),
      chargeCount: 0n,
      pastDueSince: null,
      retryAt: 0n,
      subscribedTx: event.transactionHash,
    };
  }
  if (state === undefined) return undefined;
  switch (event.name) {
    case "Charged":
      return {
        ...state,
        status: state.status === "completed" ? "completed" : "active",
        nextChargeAt: BigInt(a.nextChargeAt as string),
        chargeCount: state.chargeCount + 1n,
        pastDueSince: null,
        retryAt: 0n,
      };
    case "ChargeFailed":
      // The contract leaves the schedule at the unpaid period (after forgiving older ones beyond the backlog).
      return {
        ...state,
        status: "past_due",
        nextChargeAt: BigInt(a.dueAt as string),
        pastDueSince: state.pastDueSince ?? BigInt(a.dueAt as string),
      };
    case "SubscriptionCancelled":
      return { ...state, status: "cancelled" };
    case "SubscriptionLapsed":
      return { ...state, status: "lapsed" };
    case "SubscriptionCompleted":
      // As the contract stores it: a charge that completes leaves the schedule at the period it paid (the Charged
      // event said one period later); a completion at subscribe keeps the next period.
      return {
        ...state,
        status: "completed",
        nextChargeAt:
          event.transactionHash === state.subscribedTx ? state.nextChargeAt : state.nextChargeAt - state.period,
      };
    default:
      return state;
  }
}

const subscriptionIdOf = (event: ChainEvent): string | null =>
  "subscriptionId" in event.args ? String(event.args.subscriptionId) : null;
const merchantIdOf = (event: ChainEvent): string | null =>
  "merchantId" in event.args ? String(event.args.merchantId) : null;

interface SubscriptionRow {
  id: unknown;
  merchant_id: unknown;
  customer: string;
  plan_id: unknown;
  token: string;
  amount: unknown;
  period: unknown;
  max_charges: unknown;
  max_backlog: unknown;
  status: SubscriptionStatus;
  next_charge_at: unknown;
  charge_count: unknown;
  past_due_since: unknown;
  retry_at: unknown;
}

const fromRow = (row: SubscriptionRow): SubscriptionState => ({
  id: toBigInt(row.id),
  merchantId: toBigInt(row.merchant_id),
  customer: row.customer,
  planId: toBigInt(row.plan_id),
  token: row.token,
  amount: String(row.amount),
  period: toBigInt(row.period),
  maxCharges: toBigInt(row.max_charges),
  maxBacklog: toBigInt(row.max_backlog),
  status: row.status,
  nextChargeAt: toBigInt(row.next_charge_at),
  chargeCount: toBigInt(row.charge_count),
  pastDueSince: row.past_due_since === null ? null : toBigInt(row.past_due_since),
  retryAt: toBigInt(row.retry_at),
});

async function upsertSubscriptions(tx: Db, states: SubscriptionState[]): Promise<void> {
  if (states.length === 0) return;
  const col = <K extends keyof SubscriptionState>(key: K) =>
    states.map((s) => (s[key] === null ? null : String(s[key])));
  await tx.query(
    `INSERT INTO subscriptions (id, merchant_id, customer, plan_id, token, amount, period, max_charges, status,
                                next_charge_at, charge_count, past_due_since, retry_at, max_backlog)
     SELECT * FROM unnest($1::text[]::bigint[], $2::text[]::bigint[], $3::text[], $4::text[]::bigint[], $5::text[],
                          $6::text[]::numeric[], $7::text[]::bigint[], $8::text[]::bigint[], $9::text[],
                          $10::text[]::bigint[], $11::text[]::bigint[], $12::text[]::bigint[], $13::text[]::bigint[],
                          $14::text[]::bigint[])
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, next_charge_at = EXCLUDED.next_charge_at,
       charge_count = EXCLUDED.charge_count, past_due_since = EXCLUDED.past_due_since,
       retry_at = EXCLUDED.retry_at`,
    [
      col("id"),
      col("merchantId"),
      col("customer"),
      col("planId"),
      col("token"),
      col("amount"),
      col("period"),
      col("maxCharges"),
      col("status"),
      col("nextChargeAt"),
      col("chargeCount"),
      col("pastDueSince"),
      col("retryAt"),
      col("maxBacklog"),
    ],
  );
}

/**
 * Stores `events` (in chain order) and applies the new ones to derived state. Events already stored are ignored,
 * so re-syncing a range is harmless. Returns the events that were new.
 */
export async function storeEvents(tx: Db, events: readonly ChainEvent[]): Promise<ChainEvent[]> {
  if (events.length === 0) return [];
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO events (id, block_number, block_hash, tx_hash, log_index, name, subscription_id, merchant_id, args)
     SELECT * FROM unnest($1::text[], $2::text[]::bigint[], $3::text[], $4::text[], $5::int[], $6::text[],
                          $7::text[]::bigint[], $8::text[]::bigint[], $9::text[]::jsonb[])
     ON CONFLICT (id) DO NOTHING RETURNING id`,
    [
      events.map((e) => e.id),
      events.map((e) => String(e.blockNumber)),
      events.map((e) => e.blockHash),
      events.map((e) => e.transactionHash),
      events.map((e) => e.logIndex),
      events.map((e) => e.name),
      events.map(subscriptionIdOf),
      events.map(merchantIdOf),
      events.map((e) => JSON.stringify(e.args)),
    ],
  );
  const insertedIds = new Set(inserted.map((row) => row.id));
  const fresh = events.filter((e) => insertedIds.has(e.id));

  const bySubscription = new Map<string, ChainEvent[]>();
  const pauses = new Map<string, boolean>();
  for (const event of fresh) {
    const id = subscriptionIdOf(event);
    if (id !== null && event.name !== "ChargeSkipped") {
      const list = bySubscription.get(id) ?? [];
      list.push(event);
      bySubscription.set(id, list);
    }
    if (event.name === "MerchantPauseSet") pauses.set(String(event.args.merchantId), Boolean(event.args.paused));
  }
  if (bySubscription.size > 0) {
    const ids = [...bySubscription.keys()];
    const rows = await tx.query<SubscriptionRow>("SELECT * FROM subscriptions WHERE id = ANY($1::text[]::bigint[])", [
      ids,
    ]);
    const current = new Map(rows.map((row) => [String(row.id), fromRow(row)]));
    const updated: SubscriptionState[] = [];
    for (const [id, list] of bySubscription) {
      let state = current.get(id);
      for (const event of list) state = reduceSubscription(state, event);
      if (state) updated.push(state);
    }
    await upsertSubscriptions(tx, updated);
  }
  if (pauses.size > 0) {
    await tx.query(
      `INSERT INTO merchants (id, paused) SELECT * FROM unnest($1::text[]::bigint[], $2::bool[])
       ON CONFLICT (id) DO UPDATE SET paused = EXCLUDED.paused`,
      [[...pauses.keys()], [...pauses.values()]],
    );
  }
  return fresh;
}

interface EventRow {
  id: string;
  block_number: unknown;
  block_hash: string;
  tx_hash: string;
  log_index: number;
  name: string;
  args: Record<string, string | number | boolean> | string;
}

const eventFromRow = (chainId: number, address: string, row: EventRow): ChainEvent => ({
  id: row.id,
  chainId,
  address,
  name: row.name,
  blockNumber: Number(row.block_number),
  blockHash: row.block_hash,
  transactionHash: row.tx_hash,
  logIndex: row.log_index,
  args: typeof row.args === "string" ? JSON.parse(row.args) : row.args,
});

/**
 * Removes every event after `ancestor` and rebuilds the derived state they touched from the events that remain.
 * Returns the removed events (for the bus to retract).
 */
export async function rollbackEvents(
  tx: Db,
  ancestor: number,
  chainId: number,
  address: string,
): Promise<ChainEvent[]> {
  const removedRows = await tx.query<EventRow>(
    "DELETE FROM events WHERE block_number > $1 RETURNING id, block_number, block_hash, tx_hash, log_index, name, args",
    [ancestor],
  );
  const removed = removedRows
    .map((row) => eventFromRow(chainId, address, row))
    .sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);

  const subscriptionIds = [...new Set(removed.map(subscriptionIdOf).filter((id): id is string => id !== null))];
  if (subscriptionIds.length > 0) {
    await tx.query("DELETE FROM subscriptions WHERE id = ANY($1::text[]::bigint[])", [subscriptionIds]);
    const remaining = await tx.query<EventRow & { subscription_id: unknown }>(
      `SELECT id, block_number, block_hash, tx_hash, log_index, name, args, subscription_id FROM events
       WHERE subscription_id = ANY($1::text[]::bigint[]) ORDER BY block_number, log_index`,
      [subscriptionIds],
    );
    const states = new Map<string, SubscriptionState | undefined>();
    for (const row of remaining) {
      const key = String(row.subscription_id);
      states.set(key, reduceSubscription(states.get(key), eventFromRow(chainId, address, row)));
    }
    await upsertSubscriptions(
      tx,
      [...states.values()].filter((s): s is SubscriptionState => s !== undefined),
    );
  }

  const merchantIds = [
    ...new Set(removed.filter((e) => e.name === "MerchantPauseSet").map((e) => String(e.args.merchantId))),
  ];
  if (merchantIds.length > 0) {
    await tx.query("DELETE FROM merchants WHERE id = ANY($1::text[]::bigint[])", [merchantIds]);
    await tx.query(
      `INSERT INTO merchants (id, paused)
       SELECT DISTINCT ON (merchant_id) merchant_id, (args->>'paused')::boolean FROM events
       WHERE name = 'MerchantPauseSet' AND merchant_id = ANY($1::text[]::bigint[])
       ORDER BY merchant_id, block_number DESC, log_index DESC`,
      [merchantIds],
    );
  }
  return removed;
}
