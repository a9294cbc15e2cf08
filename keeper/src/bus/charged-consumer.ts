/**
 * Example downstream service: keeps per-merchant revenue from `Charged` events on the bus.
 *
 * Delivery is at least once (the keeper resends a batch it could not get confirmed; the broker redelivers what was
 * not acked before a connection dropped), so each message's effect is applied in ONE SQL transaction together with
 * the insert of its message id into `processed_events(id primary key)`: a redelivery finds the id and changes nothing.
 * The ack is sent only after the commit. A `removed` message undoes its event's effect; if it overtakes its event
 * (possible after a requeue), the retraction's id stays recorded and the late event is then ignored.
 *
 * Known limit: an event retracted and later re-mined in the very same block (same id) is not applied again.
 */
import { PGlite } from "@electric-sql/pglite";
import amqp from "amqplib";
import type { Channel, ChannelModel, ConsumeMessage, RecoveringChannelModel } from "amqplib";
import { setTimeout as sleep } from "node:timers/promises";

import pg from "pg";

import type { ChainEvent } from "./event-bus.js";
import { type BusMessageKind, decodeBusMessage, messageIdFor } from "./messages.js";
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

/** What handling one message did. */
export type LedgerOutcome = "applied" | "undone" | "duplicate" | "ignored";

export interface MerchantRevenue {
  merchantId: string;
  total: bigint;
  charges: number;
}

/** Per-merchant revenue from Charged events, exactly once in effect. */
export class ChargedLedger {
  constructor(private readonly db: SqlDatabase) {}

  async migrate(): Promise<void> {
    await this.db.query(`CREATE TABLE IF NOT EXISTS processed_events (
      id text PRIMARY KEY,
      processed_at timestamptz NOT NULL DEFAULT now()
    )`);
    await this.db.query(`CREATE TABLE IF NOT EXISTS merchant_revenue (
      merchant_id numeric(78, 0) PRIMARY KEY,
      total numeric(78, 0) NOT NULL,
      charges integer NOT NULL
    )`);
  }

  /** Applies (or for `removed`, undoes) one Charged event; a message id seen before changes nothing. */
  async handle(event: ChainEvent, kind: BusMessageKind): Promise<LedgerOutcome> {
    if (event.name !== "Charged") throw new TypeError(`ChargedLedger handles Charged events, got ${event.name}`);
    const merchantId = decimalArg(event, "merchantId");
    const amount = decimalArg(event, "amount");
    return this.db.transaction(async (tx) => {
      // An event and its retraction may be handled concurrently by two consumers: serialise them on the event id.
      await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [event.id]);
      const inserted = await tx.query(
        "INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT (id) DO NOTHING RETURNING id",
        [messageIdFor(event, kind)],
      );
      if (inserted.rows.length === 0) return "duplicate";
      const other = kind === "event" ? messageIdFor(event, "removed") : messageIdFor(event, "event");
      const counterpart = await tx.query("SELECT 1 FROM processed_events WHERE id = $1", [other]);
      if (kind === "event") {
        if (counterpart.rows.length > 0) return "ignored"; // already retracted
        await tx.query(
          `INSERT INTO merchant_revenue (merchant_id, total, charges) VALUES ($1, $2, 1)
           ON CONFLICT (merchant_id) DO UPDATE
           SET total = merchant_revenue.total + EXCLUDED.total, charges = merchant_revenue.charges + 1`,
          [merchantId, amount],
        );
        return "applied";
      }
      if (counterpart.rows.length === 0) return "ignored"; // never applied; the recorded id blocks a late event
      await tx.query("UPDATE merchant_revenue SET total = total - $2, charges = charges - 1 WHERE merchant_id = $1", [
        merchantId,
        amount,
      ]);
      return "undone";
    });
  }

  async revenue(): Promise<MerchantRevenue[]> {
    const { rows } = await this.db.query<{ merchant_id: string; total: string; charges: number }>(
      "SELECT merchant_id::text, total::text, charges FROM merchant_revenue ORDER BY merchant_id",
    );
    return rows.map((row) => ({ merchantId: row.merchant_id, total: BigInt(row.total), charges: row.charges }));
  }

  async processedCount(): Promise<number> {
    const { rows } = await this.db.query<{ count: string }>("SELECT count(*)::text AS count FROM processed_events");
    return Number(rows[0].count);
  }
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
      decoded = decodeBusMessage(message.content, message.properties.type);
    } catch (error) {
      // A malformed message can never succeed: drop it (or dead-letter it, if the queue has a DLX).
      this.stats.rejected++;
      logger?.warn({ err: (error as Error).message, messageId: message.properties.messageId }, "rejected");
      settle(() => channel.nack(message, false, false));
      return;
    }
    try {
      const outcome = await this.options.ledger.handle(decoded.event, decoded.kind);
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
