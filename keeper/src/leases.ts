// Leases in the shared store, so several keeper instances (each with its own operator key) split the work without
// talking to each other: one event-sync leader at a time, and disjoint batches of subscriptions to charge. Expiry is
// database time (`now()`), so the instances' clocks do not matter; a dead instance's leases lapse after the TTL and
// the others take its work over.
import { notQuarantined } from "./quarantine.js";
import { type Db, toBigInt, withExclusionMemory } from "./store/index.js";

/** The lease row of the event-sync leader. */
export const SYNC_LEASE = "sync";

/** This instance no longer holds the sync lease (it expired and another instance took it). */
export class LeaseLostError extends Error {
  constructor(name: string, holder: string) {
    super(`lease "${name}" is no longer held by ${holder}: another keeper instance took over`);
    this.name = "LeaseLostError";
  }
}

/** SQL: work lease `l` covers a subscription in a transaction of key `$1` that is not final yet. */
const IN_FLIGHT = `EXISTS (
  SELECT 1 FROM txs t WHERE t.sender = $1 AND t.state IN ('pending', 'mined') AND l.subscription_id = ANY(t.subscription_ids)
)`;

export interface DueQuery {
  /** Chain time: subscriptions due at or before it. */
  chainNow: bigint;
  /** Subscriptions never to claim (in this key's open transactions, or final but not synced yet). */
  exclude: readonly bigint[];
  limit: number;
}

/** Claims' worth of candidates each claim reads: up to this many instances claiming at once each get a full one. */
const CLAIM_WINDOW = 2;

export class Leases {
  /**
   * @param holder this instance's id (logged, shown in the lease rows)
   * @param sender this instance's operator key, lower-case: leases of a previous process with the same key are
   *   taken back at once (one keeper per key)
   */
  constructor(
    private readonly db: Db,
    readonly holder: string,
    private readonly sender: string,
    private readonly ttlSeconds: number,
  ) {}

  private get expiry(): string {
    return `now() + (${Math.trunc(this.ttlSeconds)} * interval '1 second')`;
  }

  /**
   * Takes or renews the named lease; true while this instance holds it. A lease held by another instance is taken
   * only once it expired (or when that instance used the same key, i.e. it was this keeper before a restart).
   */
  async acquire(name: string): Promise<boolean> {
    const rows = await this.db.query<{ holder: string }>(
      `INSERT INTO leases (name, holder, sender, expires_at) VALUES ($1, $2, $3, ${this.expiry})
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, sender = EXCLUDED.sender, expires_at = EXCLUDED.expires_at
       WHERE leases.holder = EXCLUDED.holder OR leases.sender = EXCLUDED.sender OR leases.expires_at <= now()
       RETURNING holder`,
      [name, this.holder, this.sender],
    );
    return rows.length === 1;
  }

  /**
   * Inside a store transaction: renews the named lease and locks its row until the commit, or throws a
   * {@link LeaseLostError} when another instance holds it now (a fence: a stale leader never commits).
   */
  async fence(tx: Db, name: string): Promise<void> {
    const rows = await tx.query(
      `UPDATE leases SET expires_at = ${this.expiry} WHERE name = $1 AND holder = $2 RETURNING 1`,
      [name, this.holder],
    );
    if (rows.length !== 1) throw new LeaseLostError(name, this.holder);
  }

  /** Gives the named lease up (graceful stop), so another instance need not wait for it to expire. */
  async release(name: string): Promise<void> {
    await this.db.query("DELETE FROM leases WHERE name = $1 AND holder = $2", [name, this.holder]);
  }

  /**
   * Claims up to `limit` due subscriptions that no live claim covers (this instance's included: what it claimed
   * and did not send, it released). The claim locks and updates the lease rows themselves (`FOR UPDATE SKIP
   * LOCKED`): concurrent instances skip each other's rows instead of waiting, and a row another instance claimed
   * after this statement's snapshot is re-checked on its new version and left out, so claims are disjoint.
   */
  async claimDue(query: DueQuery): Promise<bigint[]> {
    // The exclusion is a hashed anti-join: `id = ANY(array)` would scan the whole array for every row.
    const due = `s.status IN ('active', 'past_due') AND s.next_charge_at <= $1 AND s.retry_at <= $1
      AND s.id NOT IN (SELECT unnest($2::text[]::bigint[]))
      AND NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = s.merchant_id AND m.paused)
      AND ${notQuarantined(1)}`;
    const params = [query.chainNow.toString(), query.exclude.map(String), query.limit];
    // A row to lock for each of the next due subscriptions that has none yet (an expired one: claimable). Bounded
    // by the claim's size and read in due order from the partial index (with a million due, creating a row for
    // every one took seconds per claim); CLAIM_WINDOW claims' worth, so instances claiming at the same moment each
    // find rows they can take instead of all queueing for the same ones.
    await withExclusionMemory(this.db, query.exclude.length, (tx) =>
      tx.query(
        `INSERT INTO work_leases (subscription_id, holder, sender, expires_at)
       SELECT s.id, '', '', '-infinity' FROM subscriptions s
       WHERE ${due} AND NOT EXISTS (SELECT 1 FROM work_leases l WHERE l.subscription_id = s.id)
       ORDER BY s.next_charge_at, s.id LIMIT $3 * ${CLAIM_WINDOW}
       ON CONFLICT (subscription_id) DO NOTHING`,
        params,
      ),
    );
    return withExclusionMemory(this.db, query.exclude.length, async (tx) => {
      // Candidates in due order, read from the partial index past the live claims (a bounded walk, whatever the
      // number of lease rows), then locked: a row another instance claims meanwhile is skipped or re-checked.
      const rows = await tx.query<{ id: unknown }>(
        `WITH candidates AS (
           SELECT s.id, s.next_charge_at FROM subscriptions s
           WHERE ${due}
             AND NOT EXISTS (SELECT 1 FROM work_leases l WHERE l.subscription_id = s.id AND l.expires_at > now())
           ORDER BY s.next_charge_at, s.id LIMIT $3 * ${CLAIM_WINDOW}
         )
         SELECT l.subscription_id AS id FROM candidates c JOIN work_leases l ON l.subscription_id = c.id
         WHERE l.expires_at <= now()
         ORDER BY c.next_charge_at, c.id LIMIT $3
         FOR UPDATE OF l SKIP LOCKED`,
        params,
      );
      const ids = rows.map((row) => String(row.id));
      if (ids.length === 0) return [];
      await tx.query(
        `UPDATE work_leases SET holder = $2, sender = $3, expires_at = ${this.expiry}
         WHERE subscription_id = ANY($1::text[]::bigint[])`,
        [ids, this.holder, this.sender],
      );
      return ids.map((id) => BigInt(id));
    });
  }

  /** Renews this instance's claims on `ids`; returns the ones it still holds (a lapsed claim may have been taken). */
  async renew(ids: readonly bigint[]): Promise<bigint[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<{ subscription_id: unknown }>(
      `UPDATE work_leases SET expires_at = ${this.expiry}, holder = $2
       WHERE subscription_id = ANY($1::text[]::bigint[]) AND (holder = $2 OR sender = $3)
       RETURNING subscription_id`,
      [ids.map(String), this.holder, this.sender],
    );
    return rows.map((row) => toBigInt(row.subscription_id));
  }

  /** Drops this instance's claims on `ids` (not sent, or their transaction is final). */
  async releaseWork(ids: readonly bigint[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query(
      // Deleted, not expired: the table then holds live claims only, which the claim's anti-joins and the renewals
      // scan (kept rows made them O(charged so far): 14 s per renewal after 140,000 charges of a million).
      `DELETE FROM work_leases WHERE subscription_id = ANY($1::text[]::bigint[]) AND (holder = $2 OR sender = $3)`,
      [ids.map(String), this.holder, this.sender],
    );
  }

  /**
   * Keeps the claims of this key's transactions in flight alive, and (with `dropIdle`, after a restart) drops its
   * claims that are in none: they were taken and never sent.
   */
  async renewInFlight(options: { dropIdle?: boolean } = {}): Promise<void> {
    if (options.dropIdle) {
      await this.db.query(`DELETE FROM work_leases l WHERE l.sender = $1 AND NOT ${IN_FLIGHT}`, [this.sender]);
    }
    await this.db.query(
      `UPDATE work_leases l SET expires_at = ${this.expiry}, holder = $2 WHERE l.sender = $1 AND ${IN_FLIGHT}`,
      [this.sender, this.holder],
    );
  }

  /**
   * Renews every work lease this instance holds: its live claims (not yet sent) and the claims of its transactions
   * in flight. A released or lapsed claim not in flight stays so (it may have been taken). Returns how many it renewed.
   */
  async renewHeld(): Promise<number> {
    const rows = await this.db.query(
      `UPDATE work_leases l SET expires_at = ${this.expiry}, holder = $2
       WHERE (l.sender = $1 OR l.holder = $2) AND (l.expires_at > now() OR ${IN_FLIGHT})
       RETURNING 1`,
      [this.sender, this.holder],
    );
    return rows.length;
  }
}
