/**
 * Example downstream service: keeps per-merchant revenue from `Charged` events on the bus.
 *
 * Delivery is at least once and not necessarily in order (the keeper resends a batch it could not get confirmed, or
 * after a crash; the broker redelivers what was not acked before a connection dropped, behind newer messages), and
 * one event id may be published, retracted by a reorg and published again when its block comes back. So the ledger
 * keeps per event id the highest publication sequence it handled and whether the event's amount is applied
 * (`charged_events`), and handles each message in ONE SQL transaction with its effect: a message at or below the
 * recorded sequence (a redelivery, or overtaken by a later publication) changes nothing; a newer `event` applies the
 * amount unless it is applied, a newer `removed` undoes it if it is. The ack is sent only after the commit.
 */
import { PGlite } from "@electric-sql/pglite";
import amqp from "amqplib";
import type { Channel, ChannelModel, ConsumeMessage, RecoveringChannelModel } from "amqplib";
import { setTimeout as sleep } from "node:timers/promises";

import pg from "pg";

import type { ChainEvent } from "./event-bus.js";
import { type BusMessageKind, decodeBusMessage, isSequence } from "./messages.js";
import { type BusLogger, DEFAULT_EXCHANGE, maskPassword } from "./rabbitmq.js";

/** A connection (or transaction) that runs parameterised SQL. */
export interface SqlClient {
  query<Row>(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>;
}

export interface SqlDatabase extends SqlClient {
  transaction<T>(work: (client: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Embedded PostgreSQL (PGlite): in memory without `dataDir`, else persisted there. */
export async function openPgliteDatabase(dataDir?: string): Promise<SqlDatabase> {
  const db = await PGlite.create(dataDir);
  const client = (target: Pick<PGlite, "query">): SqlClient => ({
    query: async <Row>(sql: string, params?: unknown[]) => ({ rows: (await target.query<Row>(sql, params)).rows }),
  });
  return {
    ...client(db),
    transaction: (work) => db.transaction((tx) => work(client(tx))),
    close: () => db.close(),
  };
}

/** A PostgreSQL server through a small pool. */
export function openPostgresDatabase(connectionString: string): SqlDatabase {
  const pool = new pg.Pool({ connectionString, max: 2 });
  const query = async <Row>(client: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]) => {
    const result = await client.query(sql, params);
    return { rows: result.rows as Row[] };
  };
  return {
    query: (sql, params) => query(pool, sql, params),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await work({ query: (sql, params) => query(client, sql, params) });
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/**
 * What handling one message did: `duplicate` when its sequence is at or below the event's latest (a redelivery or a
 * re-send, or overtaken by a later publication); `ignored` when it is newer but the effect is already in the state it
 * asks for (an event already applied, a retraction that overtook its event).
 */
export type LedgerOutcome = "applied" | "undone" | "duplicate" | "ignored";

export interface MerchantRevenue {
  merchantId: string;
  total: bigint;
  charges: number;
}

/** What the ledger knows about one event id. */
export interface LedgerEventState {
  eventId: string;
  /** The highest publication sequence handled. */
  sequence: number;
  /** Whether its amount is in the merchant's revenue. */
  applied: boolean;
}

/** Per-merchant revenue from Charged events, exactly once in effect. */
export class ChargedLedger {
  constructor(private readonly db: SqlDatabase) {}

  async migrate(): Promise<void> {
    await this.db.transaction(async (tx) => {
      // Serialises consumers starting on one database at once.
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('charged_ledger_migrate'))");
      await tx.query(`CREATE TABLE IF NOT EXISTS charged_events (
        event_id text PRIMARY KEY,
        last_sequence bigint NOT NULL,
        applied boolean NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
      await tx.query(`CREATE TABLE IF NOT EXISTS merchant_revenue (
        merchant_id numeric(78, 0) PRIMARY KEY,
        total numeric(78, 0) NOT NULL,
        charges integer NOT NULL
      )`);
      await migrateProcessedEvents(tx);
    });
  }

  /**
   * Applies an event (`kind` "event") or undoes it ("removed") unless a publication with this or a higher
   * `sequence` was handled already; see {@link LedgerOutcome}.
   */
  async handle(event: ChainEvent, kind: BusMessageKind, sequence: number): Promise<LedgerOutcome> {
    if (event.name !== "Charged") throw new TypeError(`ChargedLedger handles Charged events, got ${event.name}`);
    if (kind !== "event" && kind !== "removed") {
      throw new TypeError(`Charged event ${event.id}: kind must be "event" or "removed", got ${JSON.stringify(kind)}`);
    }
    if (!isSequence(sequence)) {
      throw new TypeError(
        `Charged event ${event.id}: sequence must be a non-negative integer, got ${String(sequence)}`,
      );
    }
    const merchantId = decimalArg(event, "merchantId");
    const amount = decimalArg(event, "amount");
    return this.db.transaction(async (tx) => {
      // Publications of one event may be handled concurrently by two consumers: serialise them on the event id.
      await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [event.id]);
      const { rows } = await tx.query<{ last_sequence: string; applied: boolean }>(
        "SELECT last_sequence::text, applied FROM charged_events WHERE event_id = $1",
        [event.id],
      );
      const state = rows[0];
      if (state !== undefined && BigInt(state.last_sequence) >= BigInt(sequence)) return "duplicate";
      const wasApplied = state?.applied ?? false;
      const applied = kind === "event";
      await tx.query(
        `INSERT INTO charged_events (event_id, last_sequence, applied) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO UPDATE
         SET last_sequence = EXCLUDED.last_sequence, applied = EXCLUDED.applied, updated_at = now()`,
        [event.id, sequence, applied],
      );
      if (applied === wasApplied) return "ignored";
      if (applied) {
        await tx.query(
          `INSERT INTO merchant_revenue (merchant_id, total, charges) VALUES ($1, $2, 1)
           ON CONFLICT (merchant_id) DO UPDATE
           SET total = merchant_revenue.total + EXCLUDED.total, charges = merchant_revenue.charges + 1`,
          [merchantId, amount],
        );
        return "applied";
      }
      await tx.query("UPDATE merchant_revenue SET total = total - $2, charges = charges - 1 WHERE merchant_id = $1", [
        merchantId,
        amount,
      ]);
      return "undone";
    });
  }

  /** Revenue per merchant; a merchant whose every charge was undone drops out. */
  async revenue(): Promise<MerchantRevenue[]> {
    const { rows } = await this.db.query<{ merchant_id: string; total: string; charges: number }>(
      `SELECT merchant_id::text, total::text, charges FROM merchant_revenue
       WHERE charges <> 0 OR total <> 0 ORDER BY merchant_id`,
    );
    return rows.map((row) => ({ merchantId: row.merchant_id, total: BigInt(row.total), charges: row.charges }));
  }

  /** Every event id the ledger has handled a message for, in id order. */
  async events(): Promise<LedgerEventState[]> {
    const { rows } = await this.db.query<{ event_id: string; last_sequence: string; applied: boolean }>(
      "SELECT event_id, last_sequence::text, applied FROM charged_events ORDER BY event_id",
    );
    return rows.map((row) => ({ eventId: row.event_id, sequence: Number(row.last_sequence), applied: row.applied }));
  }
}

/**
 * Carries a ledger from the earlier `processed_events(id)` table (message ids `<event id>` and `<event id>:removed`,
 * no sequence) over to `charged_events`: sequence 0, applied when the event was seen and not retracted. Every
 * sequence the keeper publishes is at least 1, so its next publication of such an event is handled as newer.
 */
async function migrateProcessedEvents(tx: SqlClient): Promise<void> {
  const { rows } = await tx.query<{ present: boolean }>(
    "SELECT to_regclass('processed_events') IS NOT NULL AS present",
  );
  if (!rows[0].present) return;
  await tx.query(
    `INSERT INTO charged_events (event_id, last_sequence, applied)
     SELECT DISTINCT ON (event_id) event_id, 0, NOT retracted FROM (
       SELECT CASE WHEN retracted THEN left(id, -length(':removed')) ELSE id END AS event_id, retracted
       FROM (SELECT id, id LIKE '%:removed' AS retracted FROM processed_events) AS marked
     ) AS ids
     ORDER BY event_id, retracted DESC
     ON CONFLICT (event_id) DO NOTHING`,
  );
  await tx.query("DROP TABLE processed_events");
}

function decimalArg(event: ChainEvent, name: string): string {
  const value = event.args[name];
  if (typeof value !== "string" || !/^\d+$/.test(value)) {
    throw new TypeError(
      `Charged event ${event.id}: args.${name} must be a decimal string, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

const FAILURE_PAUSE_MS = 500;

export interface ChargedConsumerOptions {
  url: string;
  ledger: ChargedLedger;
  /** [recurring-billing.events] */
  exchange?: string;
  /** [charged-ledger] durable queue bound to `*.Charged` and `*.Charged.removed`. */
  queue?: string;
  /** [100] unacked messages in flight. */
  prefetch?: number;
  /** [100] first reconnect delay, doubling up to 5 s. */
  initialReconnectDelayMs?: number;
  logger?: BusLogger;
}

export interface ChargedConsumerStats {
  delivered: number;
  applied: number;
  undone: number;
  duplicates: number;
  ignored: number;
  rejected: number;
  failed: number;
}

/** Consumes Charged events into a ChargedLedger; reconnects after a dropped connection and resumes consuming. */
export class ChargedConsumer {
  readonly stats: ChargedConsumerStats = {
    delivered: 0,
    applied: 0,
    undone: 0,
    duplicates: 0,
    ignored: 0,
    rejected: 0,
    failed: 0,
  };
  /** Messages are handled one at a time, in delivery order. */
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: Required<Omit<ChargedConsumerOptions, "logger">> & { logger?: BusLogger },
    private connection?: RecoveringChannelModel,
  ) {}

  static async start(options: ChargedConsumerOptions): Promise<ChargedConsumer> {
    const consumer = new ChargedConsumer({
      exchange: DEFAULT_EXCHANGE,
      queue: "charged-ledger",
      prefetch: 100,
      initialReconnectDelayMs: 100,
      ...options,
    });
    await consumer.connect();
    return consumer;
  }

  async close(): Promise<void> {
    await this.connection?.close();
    await this.tail;
  }

  private async connect(): Promise<void> {
    const { url, initialReconnectDelayMs, logger } = this.options;
    const endpoint = maskPassword(url);
    this.connection = await amqp
      .connect(url, {
        recovery: {
          initialDelay: initialReconnectDelayMs,
          maxDelay: 5_000,
          initialMaxRetries: 0,
          // Runs after every (re)connect: a new connection needs its own channel and consumer.
          setup: (model: ChannelModel) => this.subscribe(model),
        },
      })
      .catch((error: Error) => {
        throw new Error(`RabbitMQ is not reachable at ${endpoint}: ${error.message}`, { cause: error });
      });
    this.connection.on("disconnect", (error: Error) => logger?.warn({ err: error.message, endpoint }, "disconnected"));
    this.connection.on("connect", () => logger?.info({ endpoint }, "consuming"));
    this.connection.on("error", (error: Error) => logger?.warn({ err: error.message, endpoint }, "connection error"));
  }

  private async subscribe(model: ChannelModel): Promise<void> {
    const { exchange, queue, prefetch, logger } = this.options;
    const channel = await model.createChannel();
    channel.on("error", (error: Error) => logger?.warn({ err: error.message }, "channel error"));
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, "*.Charged");
    await channel.bindQueue(queue, exchange, "*.Charged.removed");
    await channel.prefetch(prefetch);
    await channel.consume(queue, (message) => {
      if (message) this.tail = this.tail.then(() => this.process(channel, message));
    });
  }

  private async process(channel: Channel, message: ConsumeMessage): Promise<void> {
    const { logger } = this.options;
    this.stats.delivered++;
    let decoded;
    try {
      decoded = decodeBusMessage(message.content, message.properties);
    } catch (error) {
      // A malformed message can never succeed: drop it (or dead-letter it, if the queue has a DLX).
      this.stats.rejected++;
      logger?.warn({ err: (error as Error).message, messageId: message.properties.messageId }, "rejected");
      settle(() => channel.nack(message, false, false));
      return;
    }
    try {
      const outcome = await this.options.ledger.handle(decoded.event, decoded.kind, decoded.sequence);
      this.stats[outcome === "duplicate" ? "duplicates" : outcome]++;
      settle(() => channel.ack(message));
    } catch (error) {
      // A TypeError is a bad payload (it will never succeed); anything else, e.g. the database being down, may pass
      // later: requeue after a pause rather than spinning on it.
      const permanent = error instanceof TypeError;
      this.stats[permanent ? "rejected" : "failed"]++;
      logger?.warn({ err: (error as Error).message, messageId: message.properties.messageId }, "handling failed");
      if (!permanent) await sleep(FAILURE_PAUSE_MS);
      settle(() => channel.nack(message, false, !permanent));
    }
  }
}

/** Acks/nacks on a channel that closed meanwhile throw; the broker then redelivers, which the ledger absorbs. */
function settle(action: () => void): void {
  try {
    action();
  } catch {
    // channel gone: the message is redelivered
  }
}
