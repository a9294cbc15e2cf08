// The console's read model: bounded queries over the keeper's store, shared by the HTTP API and anything else that
// reads the store (tasks, tests). Amounts are base-unit decimal strings; times are chain seconds.
import { type Db, toBigInt, toNumber } from "../store/db.js";

/** Subscription statuses as the store spells them. */
export const STORE_STATUSES = ["active", "past_due", "cancelled", "lapsed", "completed"] as const;
export type StoreStatus = (typeof STORE_STATUSES)[number];

const DAY = 86_400;

/** Counts by status, the sync cursor and the quarantine size. */
export async function overview(db: Db) {
  const [statusRows, cursorRows, quarantineRows, pendingRows] = await Promise.all([
    db.query<{ status: string; count: unknown }>("SELECT status, count(*) AS count FROM subscriptions GROUP BY status"),
    db.query<{ block_number: unknown }>("SELECT block_number FROM sync_cursor WHERE id = 1"),
    db.query<{ count: unknown }>("SELECT count(*) AS count FROM quarantine"),
    db.query<{ count: unknown }>("SELECT count(*) AS count FROM txs WHERE state IN ('pending', 'mined')"),
  ]);
  const subscriptions = Object.fromEntries(STORE_STATUSES.map((status) => [status, 0])) as Record<StoreStatus, number>;
  for (const row of statusRows) subscriptions[row.status as StoreStatus] = toNumber(row.count);
  return {
    subscriptions,
    syncedBlock: cursorRows.length === 0 ? null : toNumber(cursorRows[0].block_number),
    quarantined: toNumber(quarantineRows[0]?.count ?? 0),
    openTransactions: toNumber(pendingRows[0]?.count ?? 0),
  };
}

/**
 * Charges and failed payments per day over the `days` days before `now`, by the due date of the period concerned
 * (the store keeps chain data, not block times: a period paid late counts on the day it fell due).
 */
export async function chargesPerDay(db: Db, now: number, days: number) {
  const from = Math.floor(now / DAY - days + 1) * DAY;
  const rows = await db.query<{ day: unknown; kind: string; count: unknown; amount: unknown }>(
    `SELECT floor(due / ${DAY})::bigint AS day, kind, count(*) AS count, sum(amount) AS amount FROM (
       SELECT (e.args->>'nextChargeAt')::numeric - s.period AS due, 'charged' AS kind, (e.args->>'amount')::numeric AS amount
         FROM events e JOIN subscriptions s ON s.id = e.subscription_id WHERE e.name = 'Charged'
       UNION ALL
       SELECT (e.args->>'dueAt')::numeric AS due, 'failed' AS kind, 0 AS amount FROM events e WHERE e.name = 'ChargeFailed'
     ) AS items WHERE due >= $1 AND due < $2 GROUP BY day, kind ORDER BY day`,
    [from, from + days * DAY],
  );
  const byDay = new Map<number, { day: number; charged: number; failed: number }>();
  for (let index = 0; index < days; index += 1) {
    const day = from / DAY + index;
    byDay.set(day, { day: day * DAY, charged: 0, failed: 0 });
  }
  for (const row of rows) {
    const entry = byDay.get(toNumber(row.day));
    if (entry === undefined) continue;
    if (row.kind === "charged") entry.charged = toNumber(row.count);
    else entry.failed = toNumber(row.count);
  }
  return [...byDay.values()];
}

/** Revenue per merchant and token (all time, or the `days` days before `now` by due date), at most 500 rows. */
export async function revenueByMerchant(db: Db, now: number, days: number | undefined) {
  const since = days === undefined ? null : Math.floor(now / DAY - days + 1) * DAY;
  const rows = await db.query<{ merchant_id: unknown; token: string; charges: unknown; amount: unknown }>(
    `SELECT e.merchant_id, s.token, count(*) AS charges, sum((e.args->>'amount')::numeric)::text AS amount
       FROM events e JOIN subscriptions s ON s.id = e.subscription_id
      WHERE e.name = 'Charged' AND ($1::numeric IS NULL OR (e.args->>'nextChargeAt')::numeric - s.period >= $1::numeric)
      GROUP BY e.merchant_id, s.token ORDER BY e.merchant_id, s.token LIMIT 500`,
    [since],
  );
  return rows.map((row) => ({
    merchantId: toNumber(row.merchant_id),
    token: row.token,
    charges: toNumber(row.charges),
    amount: String(row.amount),
  }));
}

interface SubscriptionRow {
  id: unknown;
  merchant_id: unknown;
  customer: string;
  token: string;
  amount: unknown;
  period: unknown;
  status: string;
  next_charge_at: unknown;
  past_due_since: unknown;
}

const SUBSCRIPTION_COLUMNS =
  "id, merchant_id, customer, token, amount::text AS amount, period, status, next_charge_at, past_due_since";

function subscriptionJson(row: SubscriptionRow) {
  return {
    id: toNumber(row.id),
    merchantId: toNumber(row.merchant_id),
    customer: row.customer,
    token: row.token,
    amount: String(row.amount),
    period: toNumber(row.period),
    status: row.status,
    nextChargeAt: toNumber(row.next_charge_at),
    pastDueSince: row.past_due_since === null ? null : toNumber(row.past_due_since),
  };
}

/** One page of the subscriptions with `status`, by id, and how many there are. */
export async function subscriptionsByStatus(db: Db, status: StoreStatus, limit: number, offset: number) {
  const [rows, total] = await Promise.all([
    db.query<SubscriptionRow>(
      `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE status = $1 ORDER BY id LIMIT $2 OFFSET $3`,
      [status, limit, offset],
    ),
    db.query<{ count: unknown }>("SELECT count(*) AS count FROM subscriptions WHERE status = $1", [status]),
  ]);
  return { total: toNumber(total[0].count), limit, offset, items: rows.map(subscriptionJson) };
}

/** Subscriptions that fall due before `now + hours`, earliest first (overdue ones included), at most `limit`. */
export async function dueSoon(db: Db, now: number, hours: number, limit: number) {
  const until = now + hours * 3600;
  const [rows, total] = await Promise.all([
    db.query<SubscriptionRow>(
      `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions
        WHERE status IN ('active', 'past_due') AND next_charge_at < $1 ORDER BY next_charge_at, id LIMIT $2`,
      [until, limit],
    ),
    db.query<{ count: unknown }>(
      "SELECT count(*) AS count FROM subscriptions WHERE status IN ('active', 'past_due') AND next_charge_at < $1",
      [until],
    ),
  ]);
  return { until, total: toNumber(total[0].count), items: rows.map(subscriptionJson) };
}

/** Transactions sent and not yet final, oldest first, with their age and fee bumps. */
export async function pendingTransactions(db: Db, nowMs: number, limit: number) {
  const rows = await db.query<{
    sender: string;
    nonce: unknown;
    state: string;
    created_at_ms: unknown;
    last_sent_at_ms: unknown;
    items: unknown;
    attempts: unknown;
    max_fee: unknown;
  }>(
    `SELECT t.sender, t.nonce, t.state, t.created_at_ms, t.last_sent_at_ms, cardinality(t.subscription_ids) AS items,
            (SELECT count(*) FROM tx_attempts a WHERE a.sender = t.sender AND a.nonce = t.nonce) AS attempts,
            (SELECT a.max_fee_per_gas::text FROM tx_attempts a WHERE a.sender = t.sender AND a.nonce = t.nonce
              ORDER BY a.created_at_ms DESC LIMIT 1) AS max_fee
       FROM txs t WHERE t.state IN ('pending', 'mined') ORDER BY t.created_at_ms LIMIT $1`,
    [limit],
  );
  return rows.map((row) => ({
    sender: row.sender,
    nonce: toNumber(row.nonce),
    state: row.state,
    ageSeconds: Math.max(0, Math.round((nowMs - toNumber(row.created_at_ms)) / 1000)),
    items: toNumber(row.items),
    feeBumps: Math.max(0, toNumber(row.attempts) - 1),
    maxFeePerGas: row.max_fee === null ? null : String(row.max_fee),
  }));
}

/** Quarantined subscriptions (their charge could not be simulated), by id, at most `limit`. */
export async function quarantined(db: Db, limit: number) {
  const rows = await db.query<{ subscription_id: unknown; failures: unknown; retry_at: unknown; reason: string }>(
    "SELECT subscription_id, failures, retry_at, reason FROM quarantine ORDER BY subscription_id LIMIT $1",
    [limit],
  );
  return rows.map((row) => ({
    id: toNumber(row.subscription_id),
    failures: toNumber(row.failures),
    retryAt: toNumber(row.retry_at),
    reason: row.reason,
  }));
}

/** The subscription columns a listing shows, with the terms the contract copied at subscribe. */
export interface StoredSubscription {
  id: bigint;
  merchantId: bigint;
  planId: bigint;
  customer: string;
  token: string;
  amount: bigint;
  period: bigint;
  maxCharges: bigint;
  maxBacklog: bigint;
  status: StoreStatus;
  nextChargeAt: bigint;
  paidPeriods: bigint;
}

/**
 * One page of subscriptions filtered by merchant, customer and status, by id, and how many match: what
 * `subscriptions:list --store` reads instead of the chain's events.
 */
export async function filteredSubscriptions(
  db: Db,
  filter: { merchantId?: bigint; customer?: string; status?: StoreStatus; limit: number; offset: number },
): Promise<{ total: number; rows: StoredSubscription[] }> {
  const where =
    "($1::bigint IS NULL OR merchant_id = $1) AND ($2::text IS NULL OR customer = $2) AND ($3::text IS NULL OR status = $3)";
  const params = [filter.merchantId?.toString() ?? null, filter.customer?.toLowerCase() ?? null, filter.status ?? null];
  const [rows, total] = await Promise.all([
    db.query<Record<string, unknown>>(
      `SELECT id, merchant_id, plan_id, customer, token, amount::text AS amount, period, max_charges, max_backlog, status,
              next_charge_at, charge_count FROM subscriptions WHERE ${where} ORDER BY id LIMIT $4 OFFSET $5`,
      [...params, filter.limit, filter.offset],
    ),
    db.query<{ count: unknown }>(`SELECT count(*) AS count FROM subscriptions WHERE ${where}`, params),
  ]);
  return {
    total: toNumber(total[0].count),
    rows: rows.map((row) => ({
      id: toBigInt(row.id),
      merchantId: toBigInt(row.merchant_id),
      planId: toBigInt(row.plan_id),
      customer: String(row.customer),
      token: String(row.token),
      amount: toBigInt(row.amount),
      period: toBigInt(row.period),
      maxCharges: toBigInt(row.max_charges),
      maxBacklog: toBigInt(row.max_backlog),
      status: row.status as StoreStatus,
      nextChargeAt: toBigInt(row.next_charge_at),
      paidPeriods: toBigInt(row.charge_count),
    })),
  };
}
