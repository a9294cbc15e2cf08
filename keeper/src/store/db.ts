// One small database interface over embedded PGlite (default, nothing to start) and a real PostgreSQL server, so
// the same SQL runs on both. Values come back as each driver returns them: read them through `toNumber`/`toBigInt`.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

import { PGlite } from "@electric-sql/pglite";
import pg from "pg";

/** SQL access; `transaction` runs `fn` atomically (nested calls join the outer transaction). */
export interface Db {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A bigint/int8/numeric column as a JS number (PGlite returns numbers, pg returns strings). */
export const toNumber = (value: unknown): number => Number(value);
/** A bigint/int8/numeric column as a bigint. */
export const toBigInt = (value: unknown): bigint =>
  BigInt(typeof value === "number" ? Math.trunc(value) : String(value));

class TxDb implements Db {
  constructor(private readonly run: <T>(sql: string, params?: unknown[]) => Promise<T[]>) {}
  query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    return this.run<T>(sql, params);
  }
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async close(): Promise<void> {}
}

/**
 * Server settings of the embedded store. PGlite's WebAssembly memory only ever grows, so every buffer counts for the
 * keeper's lifetime: 16MB of shared buffers (default 128MB), 2MB per sort/hash (default 4MB), and shared memory
 * sized for the one connection PGlite has (100 by default: ~10 MiB of lock and process tables), as long as every
 * query that can return many rows is paged.
 */
export const PGLITE_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: "16MB",
  work_mem: "2MB",
  max_connections: "2",
};

const pgliteStartParams = () => [
  ...PGlite.defaultStartParams,
  ...Object.entries(PGLITE_SETTINGS).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
];

/**
 * Creates a new PGlite data directory in a short-lived child process: initdb peaks at ~600 MiB of WebAssembly memory,
 * which a process never gives back; opening an existing directory costs a quarter of that.
 */
export async function initPgliteDir(dataDir: string): Promise<void> {
  if (existsSync(path.join(dataDir, "PG_VERSION"))) return;
  mkdirSync(dataDir, { recursive: true });
  const script = `const { PGlite } = await import(process.argv[1]);
    const db = new PGlite(process.argv[2]); await db.waitReady; await db.close();`;
  try {
    await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script, import.meta.resolve("@electric-sql/pglite"), dataDir],
      { maxBuffer: 1024 * 1024 },
    );
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr?.trim().split("\n").at(-1) ?? (err as Error).message;
    throw new Error(`could not create the embedded store in ${dataDir}: ${detail}`);
  }
}

/** Embedded PostgreSQL (PGlite); `dataDir` undefined keeps everything in memory (tests). */
export class PgliteDb implements Db {
  private constructor(private readonly db: PGlite) {}

  static async open(dataDir?: string): Promise<PgliteDb> {
    if (dataDir !== undefined) await initPgliteDir(dataDir);
    const db = new PGlite(dataDir, { startParams: pgliteStartParams() });
    await db.waitReady;
    return new PgliteDb(db);
  }

  async query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.db.query<T>(sql, params)).rows;
  }

  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn(new TxDb(async <R>(sql: string, params?: unknown[]) => (await tx.query<R>(sql, params)).rows)),
    );
  }

  async close(): Promise<void> {
    if (!this.db.closed) await this.db.close();
  }
}

/** A PostgreSQL server through a connection pool. */
export class PostgresDb implements Db {
  private constructor(private readonly pool: pg.Pool) {}

  static async open(connectionString: string): Promise<PostgresDb> {
    const pool = new pg.Pool({ connectionString, max: 4 });
    // A dropped idle connection must not crash the process; the next query reconnects.
    pool.on("error", () => {});
    const client = await pool.connect();
    client.release();
    return new PostgresDb(pool);
  }

  async query<T>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[];
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const result = await fn(
        new TxDb(async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[]),
      );
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Opens the store the configuration names. */
export async function openDb(store: { dataDir: string } | { postgresUrl: string } | { memory: true }): Promise<Db> {
  if ("postgresUrl" in store) return PostgresDb.open(store.postgresUrl);
  return PgliteDb.open("dataDir" in store ? store.dataDir : undefined);
}
