// The transactional outbox between the store and the event bus. The event sync writes what the bus must get into
// `bus_outbox` in the very transaction that stores the events (or deletes them in a rollback); the publisher here
// sends the committed rows in id order and deletes them only after the bus confirmed them. So the bus follows exactly
// what the store committed: a transaction that fails publishes nothing, a committed one is published even if the
// keeper dies right after (by the next start or the next sync leader), and a bus that is down only makes rows wait.
// Delivery is at least once: a crash between the bus confirming a batch and its delete sends the batch again, with
// the same message ids and sequences, which consumers absorb (messages.ts).
import type { Logger } from "pino";

import { type Db, toNumber } from "../store/index.js";
import type { ChainEvent, EventBus } from "./event-bus.js";
import { type BusMessageKind, isSequence } from "./messages.js";

export interface OutboxOptions {
  /** [500] rows read, published and deleted at a time: memory stays bounded whatever the depth. */
  batchSize?: number;
  /** [5000] how long `publishCommitted` waits for a working bus before the drain goes on in the background. */
  waitMs?: number;
  /** [1000] pause after a failed drain before `kick` tries again; doubles per failure up to `maxRetryDelayMs`. */
  initialRetryDelayMs?: number;
  /** [30000] */
  maxRetryDelayMs?: number;
  /** [5000] the depth (a `count(*)`) is measured at most this often. */
  depthIntervalMs?: number;
  /** [30000] while the outbox grows after failures, at most one warning per interval. */
  warnIntervalMs?: number;
}

export interface OutboxHooks {
  /**
   * Runs first in every transaction that deletes published rows; throwing aborts it (the rows stay and are sent
   * again). With several keeper instances it fences the sync lease, so a deposed leader stops draining.
   */
  beforeDelete?(tx: Db): Promise<void>;
  /** The number of rows waiting, whenever it was measured. */
  onDepth?(depth: number): void;
}

/** Rows per INSERT statement. */
const ENQUEUE_CHUNK = 2_000;

/**
 * Inside the store transaction that commits the change: queues `events` for the bus as `kind` with `sequence`, after
 * every row already queued (ids follow commit order: only the sync-lease holder writes, see migration 4).
 */
export async function enqueue(
  tx: Db,
  kind: BusMessageKind,
  sequence: number,
  events: readonly ChainEvent[],
): Promise<void> {
  if (!isSequence(sequence)) throw new RangeError(`Outbox sequence must be a non-negative integer, got ${sequence}`);
  for (let i = 0; i < events.length; i += ENQUEUE_CHUNK) {
    await tx.query(
      `INSERT INTO bus_outbox (kind, sequence, event)
       SELECT $1, $2, e.event FROM unnest($3::text[]::jsonb[]) WITH ORDINALITY AS e(event, n) ORDER BY e.n`,
      [kind, sequence, events.slice(i, i + ENQUEUE_CHUNK).map((event) => JSON.stringify(event))],
    );
  }
}

interface OutboxRow {
  id: unknown;
  kind: BusMessageKind;
  sequence: unknown;
  event: ChainEvent | string;
}

interface Publication {
  kind: BusMessageKind;
  sequence: number;
  events: ChainEvent[];
}

/** Consecutive rows of one kind and sequence, as one bus call each (in row order). */
function publications(rows: readonly OutboxRow[]): Publication[] {
  const groups: Publication[] = [];
  for (const row of rows) {
    const sequence = toNumber(row.sequence);
    const event = typeof row.event === "string" ? (JSON.parse(row.event) as ChainEvent) : row.event;
    const last = groups.at(-1);
    if (last?.kind === row.kind && last.sequence === sequence) last.events.push(event);
    else groups.push({ kind: row.kind, sequence, events: [event] });
  }
  return groups;
}

/** Sends the outbox to the bus, one drain at a time; the sync leader calls `publishCommitted` after each commit. */
export class OutboxPublisher {
  private readonly batchSize: number;
  private readonly waitMs: number;
  private readonly initialRetryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly depthIntervalMs: number;
  private readonly warnIntervalMs: number;
  private running: Promise<boolean> | undefined;
  /** A drain was asked for while one ran: it reads again before it ends. */
  private again = false;
  private stopped = false;
  /** Consecutive drains that failed. */
  private failures = 0;
  private lastError: string | undefined;
  private retryAt = 0;
  private depthMeasuredAt = -Infinity;
  private lastWarnAt = -Infinity;
  private warnedDepth = 0;

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    options: OutboxOptions = {},
    private readonly hooks: OutboxHooks = {},
  ) {
    this.batchSize = positiveInteger("batchSize", options.batchSize ?? 500);
    this.waitMs = nonNegativeInteger("waitMs", options.waitMs ?? 5_000);
    this.initialRetryDelayMs = positiveInteger("initialRetryDelayMs", options.initialRetryDelayMs ?? 1_000);
    this.maxRetryDelayMs = positiveInteger("maxRetryDelayMs", options.maxRetryDelayMs ?? 30_000);
    this.depthIntervalMs = nonNegativeInteger("depthIntervalMs", options.depthIntervalMs ?? 5_000);
    this.warnIntervalMs = nonNegativeInteger("warnIntervalMs", options.warnIntervalMs ?? 30_000);
  }

  /** The last drain failed (the bus, or the delete): rows wait until a retry succeeds. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /**
   * After a commit: while the bus works, waits for the drain (at most `waitMs`, then it goes on in the background),
   * so the sync keeps pace with the bus and the outbox stays small; while it fails, kicks a retry and reports the
   * depth, so the sync goes on and the rows wait.
   */
  async publishCommitted(): Promise<void> {
    if (this.failing) {
      this.kick();
      await this.reportDepth();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.drain(), new Promise((resolve) => (timer = setTimeout(resolve, this.waitMs)))]);
    clearTimeout(timer);
  }

  /**
   * Publishes every committed row in id order, batch by batch, until the outbox is empty. Joins a drain in progress
   * (which then reads once more). Never rejects: resolves true once empty, false when the bus or the store failed
   * (the rows stay; logged) or `stop` was called.
   */
  drain(): Promise<boolean> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run();
    return this.running;
  }

  /**
   * Drains in the background: joins a drain in progress, else starts one unless the last one failed less than a
   * back-off ago.
   */
  kick(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else if (Date.now() >= this.retryAt) void this.drain();
  }

  /** Rows waiting (reported to `onDepth`); warns while they grow after failures. */
  async depth(): Promise<number> {
    const [{ n }] = await this.db.query<{ n: unknown }>("SELECT count(*) AS n FROM bus_outbox");
    const depth = toNumber(n);
    this.depthMeasuredAt = Date.now();
    this.hooks.onDepth?.(depth);
    if (this.failing && depth > this.warnedDepth && Date.now() - this.lastWarnAt >= this.warnIntervalMs) {
      this.lastWarnAt = Date.now();
      this.warnedDepth = depth;
      this.logger.warn(
        { depth, failedDrains: this.failures, error: this.lastError },
        "bus outbox growing: committed events wait until the event bus confirms them",
      );
    }
    return depth;
  }

  /** `depth`, unless it was measured less than `depthIntervalMs` ago (a count is a scan). */
  async reportDepth(): Promise<void> {
    if (Date.now() - this.depthMeasuredAt >= this.depthIntervalMs) await this.depth();
  }

  /** No batch starts any more; resolves once the drain in progress (if any) ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async run(): Promise<boolean> {
    try {
      for (;;) {
        this.again = false;
        const drained = await this.drainOnce();
        // `running` is cleared in the same turn as this check, so a `drain` call after it starts a new run.
        if (!drained || !this.again || this.stopped) return drained;
      }
    } finally {
      this.running = undefined;
    }
  }

  private async drainOnce(): Promise<boolean> {
    let published = 0;
    let phase = "read";
    try {
      while (!this.stopped) {
        phase = "read";
        const rows = await this.db.query<OutboxRow>(
          "SELECT id, kind, sequence, event FROM bus_outbox ORDER BY id LIMIT $1",
          [this.batchSize],
        );
        if (rows.length === 0) {
          if (this.failing) this.logger.info({ published }, "event bus confirms again: outbox drained");
          this.failures = 0;
          this.lastError = undefined;
          this.retryAt = 0;
          this.warnedDepth = 0;
          // Empty as of this read: no count needed.
          this.hooks.onDepth?.(0);
          return true;
        }
        phase = "publish";
        for (const { kind, sequence, events } of publications(rows)) {
          if (kind === "event") await this.bus.publish(events, sequence);
          else await this.bus.retract(events, sequence);
        }
        phase = "delete";
        await this.db.transaction(async (tx) => {
          await this.hooks.beforeDelete?.(tx);
          await tx.query("DELETE FROM bus_outbox WHERE id = ANY($1::text[]::bigint[])", [
            rows.map((row) => String(row.id)),
          ]);
        });
        published += rows.length;
      }
      return false;
    } catch (err) {
      this.failures++;
      this.lastError = (err as Error).message;
      const retryInMs = Math.min(this.initialRetryDelayMs * 2 ** (this.failures - 1), this.maxRetryDelayMs);
      this.retryAt = Date.now() + retryInMs;
      this.logger.warn(
        { phase, error: this.lastError, published, failedDrains: this.failures, retryInMs },
        phase === "publish"
          ? "event bus did not confirm: the outbox keeps the events and publishes them again"
          : `outbox ${phase} failed: the rows stay and are published again`,
      );
      await this.depth().catch(() => {});
      return false;
    }
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Outbox option ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Outbox option ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}
