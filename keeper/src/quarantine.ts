// Quarantine for subscriptions whose charge cannot be simulated (a hostile token, or a node that refuses the call):
// the scheduler finds them by bisecting a failing batch and sets them aside, so one bad item never holds up the
// others. Stored in its own table (not in the subscriptions rows a reorg rebuilds), so a restart keeps it. An item
// comes back after a back-off that doubles with each failure, up to a cap; a batch that simulates releases it.
import { type Db, toBigInt } from "./store/index.js";

export interface QuarantineOptions {
  /** Chain seconds before a quarantined item is simulated again the first time. */
  retrySeconds: number;
  /** Cap on the doubling back-off, chain seconds. */
  maxRetrySeconds: number;
}

/** Back-off after `failures` failed simulations: retrySeconds doubled per failure after the first, capped. */
export function quarantineBackoff(failures: number, options: QuarantineOptions): bigint {
  const doubled = BigInt(options.retrySeconds) * 2n ** BigInt(Math.min(Math.max(failures - 1, 0), 62));
  const cap = BigInt(options.maxRetrySeconds);
  return doubled < cap ? doubled : cap;
}

export class Quarantine {
  constructor(
    private readonly db: Db,
    private readonly options: QuarantineOptions,
  ) {}

  /**
   * Quarantines `ids` (or extends their quarantine) at chain time `chainNow`; returns each id with its failure count
   * and the chain time it is tried again.
   */
  async add(
    ids: readonly bigint[],
    chainNow: bigint,
    reason: string,
  ): Promise<{ id: bigint; failures: number; retryAt: bigint }[]> {
    if (ids.length === 0) return [];
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{ subscription_id: unknown; failures: number }>(
        "SELECT subscription_id, failures FROM quarantine WHERE subscription_id = ANY($1::text[]::bigint[])",
        [ids.map(String)],
      );
      const previous = new Map(rows.map((row) => [toBigInt(row.subscription_id), Number(row.failures)]));
      const entries = ids.map((id) => {
        const failures = (previous.get(id) ?? 0) + 1;
        return { id, failures, retryAt: chainNow + quarantineBackoff(failures, this.options) };
      });
      await tx.query(
        `INSERT INTO quarantine (subscription_id, failures, retry_at, reason)
         SELECT id, failures, retry_at, $4 FROM unnest($1::text[]::bigint[], $2::int[], $3::text[]::bigint[])
           AS q(id, failures, retry_at)
         ON CONFLICT (subscription_id) DO UPDATE SET failures = EXCLUDED.failures, retry_at = EXCLUDED.retry_at,
           reason = EXCLUDED.reason`,
        [
          entries.map((e) => String(e.id)),
          entries.map((e) => e.failures),
          entries.map((e) => String(e.retryAt)),
          reason.slice(0, 500),
        ],
      );
      return entries;
    });
  }

  /** Releases `ids` (their charge simulated again); returns the ids that were quarantined. */
  async release(ids: readonly bigint[]): Promise<bigint[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<{ subscription_id: unknown }>(
      "DELETE FROM quarantine WHERE subscription_id = ANY($1::text[]::bigint[]) RETURNING subscription_id",
      [ids.map(String)],
    );
    return rows.map((row) => toBigInt(row.subscription_id));
  }

  /** Every quarantined id, in id order (waiting for its retry or being retried). */
  async ids(): Promise<bigint[]> {
    const rows = await this.db.query<{ subscription_id: unknown }>(
      "SELECT subscription_id FROM quarantine ORDER BY subscription_id",
    );
    return rows.map((row) => toBigInt(row.subscription_id));
  }
}

/** SQL condition: subscription `s` is not quarantined at chain time `$<param>`. */
export const notQuarantined = (param: number) =>
  `NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.subscription_id = s.id AND q.retry_at > $${param})`;
