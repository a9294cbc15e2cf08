// Memory for a query that excludes a list of ids with `id NOT IN (SELECT unnest($n))`.
import type { Db } from "./db.js";

/** Bytes per id the planner reckons for a hashed exclusion list (a bigint tuple and its hash entry), rounded up. */
const BYTES_PER_ID = 128;
/** PostgreSQL's default work_mem: never set lower than it. */
const MIN_WORK_MEM_KB = 4096;

/**
 * Runs `fn` in a transaction whose work_mem lets PostgreSQL hash an exclusion list of `count` ids. The planner sees
 * the list's length, and when its hash table would not fit work_mem it plans a plain SubPlan instead: every row the
 * query scans is compared with the whole list, spilled to a temporary file. On the embedded store (2MB) that happened
 * from ~100,000 ids: a keeper charging a million subscriptions, with a few dozen dense blocks not yet synced, spent
 * 20 minutes in one due query (measured). Only the memory the hash table needs is used, freed when the query ends.
 */
export function withExclusionMemory<T>(db: Db, count: number, fn: (tx: Db) => Promise<T>): Promise<T> {
  const kb = Math.max(MIN_WORK_MEM_KB, Math.ceil((count * BYTES_PER_ID) / 1024));
  return db.transaction(async (tx) => {
    await tx.query(`SET LOCAL work_mem = '${kb}kB'`);
    return fn(tx);
  });
}
