import type { Db } from "./db.js";

export { initPgliteDir, openDb, PGLITE_SETTINGS, PgliteDb, PostgresDb, toBigInt, toNumber, type Db } from "./db.js";
export { withExclusionMemory } from "./exclusion.js";
export { migrate, MIGRATIONS, type Migration } from "./migrations.js";

/** The store is bound to one chain and contract on first use; another keeper config must not reuse it. */
export class StoreMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreMismatchError";
  }
}

/** Records (first run) or checks (later runs) which chain and billing contract this store belongs to. */
export async function bindStore(db: Db, chainId: number, billingAddress: string): Promise<void> {
  const expected: Record<string, string> = { chainId: String(chainId), billingAddress: billingAddress.toLowerCase() };
  await db.transaction(async (tx) => {
    // Serializes keeper instances starting on one PostgreSQL database at once (the first one inserts).
    await tx.query("SELECT pg_advisory_xact_lock(727273)");
    const rows = await tx.query<{ key: string; value: string }>("SELECT key, value FROM meta");
    const current = Object.fromEntries(rows.map((row) => [row.key, row.value]));
    for (const [key, value] of Object.entries(expected)) {
      if (current[key] === undefined) {
        await tx.query("INSERT INTO meta (key, value) VALUES ($1, $2)", [key, value]);
      } else if (current[key] !== value) {
        throw new StoreMismatchError(
          `store holds data for ${key} ${current[key]}, but the config says ${value}: point store.dataDir/postgresUrl at a store for this chain and contract, or a new one`,
        );
      }
    }
  });
}
