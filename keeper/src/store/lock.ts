// One keeper per store: an exclusive lock on the embedded store's directory (a pid file created with O_EXCL next to
// it) and, on PostgreSQL, a session advisory lock keyed on the instanceId. Two processes writing one PGlite
// directory corrupt it; two instances with one instanceId would take each other's leases for their own.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";

import pg from "pg";

/** Another live process holds the store; the process exits with code 2 on it. */
export class StoreLockedError extends Error {
  constructor(
    message: string,
    readonly holderPid?: number,
  ) {
    super(message);
    this.name = "StoreLockedError";
  }
}

export interface StoreLock {
  release(): Promise<void>;
}

/** The lock file of an embedded store: beside the directory, so PGlite's own files are never touched. */
export const lockFileOf = (dataDir: string) =>
  path.join(path.dirname(path.resolve(dataDir)), `${path.basename(path.resolve(dataDir))}.lock`);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid recorded in a lock file, or undefined when it holds none (a crash between create and write). */
export function readLockHolder(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const pid = Number(/^pid=(\d+)/m.exec(text)?.[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** The live process holding the embedded store's lock, or undefined when nobody does. */
export function storeLockHolder(dataDir: string): number | undefined {
  const pid = readLockHolder(lockFileOf(dataDir));
  return pid !== undefined && pidAlive(pid) && pid !== process.pid ? pid : undefined;
}

/**
 * Takes the embedded store's lock: creates `<dataDir>.lock` exclusively with this pid. A lock left by a dead
 * process is taken over; a live holder makes this throw {@link StoreLockedError} naming its pid.
 */
export function lockDataDir(dataDir: string): StoreLock {
  const file = lockFileOf(dataDir);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, "wx", 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = readLockHolder(file);
      if (holder !== undefined && holder !== process.pid && pidAlive(holder)) {
        throw new StoreLockedError(
          `store ${path.resolve(dataDir)} is locked by another keeper (pid ${holder}, lock file ${file}): stop it first, or give this one another store.dataDir`,
          holder,
        );
      }
      // Stale (dead holder, or an empty file from a crash right after creating it): take it over.
      try {
        unlinkSync(file);
      } catch {
        // Another starter removed it first; the next attempt decides.
      }
      continue;
    }
    writeSync(fd, `pid=${process.pid}\nhost=${hostname()}\nstarted=${new Date().toISOString()}\n`);
    closeSync(fd);
    return {
      release: async () => {
        // Only our own lock: a process that took over a lock we lost must keep it.
        if (readLockHolder(file) === process.pid) unlinkSync(file);
      },
    };
  }
  throw new StoreLockedError(
    `store ${path.resolve(dataDir)}: cannot take the lock ${file} (another keeper is starting)`,
  );
}

/** Advisory lock key space of instance locks (the second key is derived from the instanceId). */
const INSTANCE_LOCK_CLASS = 727274;

/** A stable signed 32-bit key for `instanceId` (FNV-1a). */
export function instanceLockKey(instanceId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(instanceId, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/**
 * Takes a session advisory lock on a dedicated connection for `instanceId`; the connection's application_name
 * carries this pid and host, so a refused instance can name the holder. Released when the connection closes (also
 * when the process dies).
 */
export async function lockInstance(postgresUrl: string, instanceId: string): Promise<StoreLock> {
  const client = new pg.Client({
    connectionString: postgresUrl,
    application_name: `keeper pid=${process.pid} host=${hostname()}`.slice(0, 63),
  });
  // A dropped connection loses the lock; the keeper's own pool reports the outage.
  client.on("error", () => {});
  await client.connect();
  const key = instanceLockKey(instanceId);
  try {
    const rows = (await client.query("SELECT pg_try_advisory_lock($1, $2) AS ok", [INSTANCE_LOCK_CLASS, key])).rows;
    if (rows[0].ok !== true) {
      const holder = (
        await client.query(
          `SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted LIMIT 1`,
          [INSTANCE_LOCK_CLASS, key >>> 0],
        )
      ).rows[0] as { name?: string } | undefined;
      const pid = Number(/pid=(\d+)/.exec(holder?.name ?? "")?.[1]);
      throw new StoreLockedError(
        `instanceId ${instanceId} is already running on this PostgreSQL store (${holder?.name ?? "holder unknown"}): give each instance its own instanceId`,
        Number.isSafeInteger(pid) && pid > 0 ? pid : undefined,
      );
    }
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  return { release: () => client.end().catch(() => {}) };
}

/** Locks the configured store for this process. */
export async function lockStore(
  store: { dataDir: string } | { postgresUrl: string },
  instanceId: string,
): Promise<StoreLock> {
  return "dataDir" in store ? lockDataDir(store.dataDir) : lockInstance(store.postgresUrl, instanceId);
}
