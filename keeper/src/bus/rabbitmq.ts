/**
 * EventBus on a RabbitMQ topic exchange. `publish`/`retract` resolve only once the broker confirmed every message
 * (publisher confirms on persistent messages to a durable exchange), because the outbox publisher deletes the batch
 * right after. A dropped connection is re-opened with bounded exponential backoff and the whole batch is sent again
 * (with the same sequence, which consumers absorb); if that does not succeed within `publishTimeoutMs` the call
 * rejects, so the batch stays in the outbox and is retried later.
 */
import { setTimeout as sleep } from "node:timers/promises";

import amqp from "amqplib";
import type { ConfirmChannel, RecoveringChannelModel } from "amqplib";

import type { ChainEvent, EventBus } from "./event-bus.js";
import { type BusMessageKind, type EncodedBusMessage, encodeBusMessage, SEQUENCE_HEADER } from "./messages.js";

export const DEFAULT_EXCHANGE = "recurring-billing.events";

/** The subset of a pino logger the bus uses. */
export interface BusLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface RabbitMqEventBusOptions {
  /** amqp://user:password@host:port/vhost */
  url: string;
  /** [recurring-billing.events] durable topic exchange, declared if missing. */
  exchange?: string;
  /** [10000] how long `connect` waits for the first connection before failing. */
  connectTimeoutMs?: number;
  /** [30000] how long one publish/retract keeps reconnecting and resending before it rejects. */
  publishTimeoutMs?: number;
  /** [100] first reconnect delay; doubles per attempt up to `maxReconnectDelayMs`. */
  initialReconnectDelayMs?: number;
  /** [5000] */
  maxReconnectDelayMs?: number;
  /** [10] AMQP heartbeat, so a silently dead connection is noticed within about two intervals. */
  heartbeatSeconds?: number;
  logger?: BusLogger;
}

type Settings = Required<Omit<RabbitMqEventBusOptions, "logger" | "url">> & { logger?: BusLogger };

/** The broker could not be reached, or did not confirm a batch in time; nothing after the failure is confirmed. */
export class RabbitMqUnavailableError extends Error {
  override readonly name = "RabbitMqUnavailableError";
}

export class RabbitMqEventBus implements EventBus {
  private channelPromise: Promise<ConfirmChannel> | undefined;
  private openChannelInstance: ConfirmChannel | undefined;
  /** Sends run one at a time, so `waitForConfirms` covers exactly one batch and batches stay in order. */
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly connection: RecoveringChannelModel,
    private readonly settings: Settings,
    /** The URL with its password masked, for messages and logs. */
    readonly endpoint: string,
  ) {}

  /** Connects, declares the exchange and returns the bus; rejects with a RabbitMqUnavailableError naming the broker. */
  static async connect(options: RabbitMqEventBusOptions): Promise<RabbitMqEventBus> {
    const settings = resolveSettings(options);
    const url = parseAmqpUrl(options.url);
    const endpoint = maskPassword(url);
    if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", String(settings.heartbeatSeconds));

    const connection = await amqp.connect(url.toString(), {
      recovery: {
        waitForConnect: false,
        initialDelay: settings.initialReconnectDelayMs,
        maxDelay: settings.maxReconnectDelayMs,
      },
    });
    let lastError: Error | undefined;
    const log = settings.logger;
    connection.on("connect-failed", (error: Error) => {
      lastError = error;
    });
    connection.on("disconnect", (error: Error) => log?.warn({ err: error.message, endpoint }, "rabbitmq disconnected"));
    connection.on("connect", () => log?.info({ endpoint }, "rabbitmq connected"));
    // Connection errors are followed by "disconnect" and a reconnect; without a listener they would crash the process.
    connection.on("error", (error: Error) => log?.warn({ err: error.message, endpoint }, "rabbitmq connection error"));

    const bus = new RabbitMqEventBus(connection, settings, endpoint);
    try {
      await withTimeout(bus.channel(), settings.connectTimeoutMs);
    } catch (error) {
      await connection.close().catch(() => {});
      const cause = lastError ?? error;
      throw new RabbitMqUnavailableError(
        `RabbitMQ is not reachable at ${endpoint} within ${settings.connectTimeoutMs} ms: ${errorMessage(cause)}`,
        { cause },
      );
    }
    return bus;
  }

  get exchange(): string {
    return this.settings.exchange;
  }

  publish(events: readonly ChainEvent[], sequence: number): Promise<void> {
    return this.send(events, "event", sequence);
  }

  retract(events: readonly ChainEvent[], sequence: number): Promise<void> {
    return this.send(events, "removed", sequence);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.connection.close();
  }

  private send(events: readonly ChainEvent[], kind: BusMessageKind, sequence: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error("RabbitMqEventBus is closed"));
    let messages: EncodedBusMessage[];
    try {
      messages = events.map((event) => encodeBusMessage(event, kind, sequence));
    } catch (error) {
      return Promise.reject(error);
    }
    if (messages.length === 0) return Promise.resolve();
    const run = this.tail.then(() => this.sendUntilConfirmed(messages));
    this.tail = run.catch(() => {});
    return run;
  }

  private async sendUntilConfirmed(messages: readonly EncodedBusMessage[]): Promise<void> {
    const { publishTimeoutMs, initialReconnectDelayMs, maxReconnectDelayMs, logger } = this.settings;
    const deadline = Date.now() + publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new Error("RabbitMqEventBus closed before the broker confirmed the batch");
      let channel: ConfirmChannel | undefined;
      try {
        channel = await withTimeout(this.channel(), deadline - Date.now());
        await withTimeout(this.publishAll(channel, messages), deadline - Date.now());
        return;
      } catch (error) {
        // Unconfirmed messages on this channel are unknowable now: drop it and resend the batch on a fresh one.
        if (channel) this.discard(channel);
        const remaining = deadline - Date.now();
        if (this.closed || remaining <= 0) {
          throw new RabbitMqUnavailableError(
            `RabbitMQ at ${this.endpoint} did not confirm ${messages.length} message(s) to exchange ` +
              `"${this.settings.exchange}" within ${publishTimeoutMs} ms (${attempt} attempt(s)): ${errorMessage(error)}`,
            { cause: error },
          );
        }
        const delay = Math.min(initialReconnectDelayMs * 2 ** (attempt - 1), maxReconnectDelayMs, remaining);
        logger?.warn(
          { err: errorMessage(error), attempt, retryInMs: delay, messages: messages.length },
          "rabbitmq publish failed; resending the batch",
        );
        await sleep(delay);
      }
    }
  }

  private async publishAll(channel: ConfirmChannel, messages: readonly EncodedBusMessage[]): Promise<void> {
    for (const message of messages) {
      const accepted = channel.publish(this.settings.exchange, message.routingKey, message.content, {
        persistent: true,
        messageId: message.messageId,
        type: message.kind,
        headers: { [SEQUENCE_HEADER]: message.sequence },
        contentType: "application/json",
        appId: "recurring-billing-keeper",
      });
      if (!accepted) await drained(channel);
    }
    await channel.waitForConfirms();
  }

  /** The current confirm channel, opened (and the exchange declared) on first use after each reconnect. */
  private channel(): Promise<ConfirmChannel> {
    if (!this.channelPromise) {
      const opening = this.openChannel();
      this.channelPromise = opening;
      opening.catch(() => {
        if (this.channelPromise === opening) this.channelPromise = undefined;
      });
    }
    return this.channelPromise;
  }

  private async openChannel(): Promise<ConfirmChannel> {
    const channel = await this.connection.createConfirmChannel();
    channel.on("error", (error: Error) =>
      this.settings.logger?.warn({ err: error.message, endpoint: this.endpoint }, "rabbitmq channel error"),
    );
    channel.on("close", () => {
      if (this.openChannelInstance === channel) this.forget();
    });
    await channel.assertExchange(this.settings.exchange, "topic", { durable: true });
    this.openChannelInstance = channel;
    return channel;
  }

  private discard(channel: ConfirmChannel): void {
    if (this.openChannelInstance === channel) this.forget();
    // Not awaited: on a half-open connection the close handshake would hang until the heartbeat gives up.
    channel.close().catch(() => {});
  }

  private forget(): void {
    this.openChannelInstance = undefined;
    this.channelPromise = undefined;
  }
}

function resolveSettings(options: RabbitMqEventBusOptions): Settings {
  const settings: Settings = {
    exchange: options.exchange ?? DEFAULT_EXCHANGE,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    publishTimeoutMs: options.publishTimeoutMs ?? 30_000,
    initialReconnectDelayMs: options.initialReconnectDelayMs ?? 100,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? 5_000,
    heartbeatSeconds: options.heartbeatSeconds ?? 10,
    logger: options.logger,
  };
  if (settings.exchange.length === 0) throw new TypeError("RabbitMQ exchange must be a non-empty name");
  for (const field of ["connectTimeoutMs", "publishTimeoutMs", "initialReconnectDelayMs", "maxReconnectDelayMs"]) {
    const value = settings[field as keyof Settings];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      throw new TypeError(`RabbitMQ option ${field} must be a positive integer (milliseconds), got ${String(value)}`);
    }
  }
  if (!Number.isInteger(settings.heartbeatSeconds) || settings.heartbeatSeconds < 0) {
    throw new TypeError(
      `RabbitMQ option heartbeatSeconds must be a non-negative integer, got ${settings.heartbeatSeconds}`,
    );
  }
  return settings;
}

function parseAmqpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError("RabbitMQ URL is not a valid URL; expected amqp://user:password@host:5672[/vhost]");
  }
  if (url.protocol !== "amqp:" && url.protocol !== "amqps:") {
    throw new TypeError(`RabbitMQ URL must start with amqp:// or amqps://, got ${url.protocol}//`);
  }
  return url;
}

/** The URL as safe to log: the password replaced by `***`. */
export function maskPassword(url: URL | string): string {
  const copy = new URL(url.toString());
  if (copy.password) copy.password = "***";
  return copy.toString();
}

function drained(channel: ConfirmChannel): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => settle(resolve);
    const onClose = () => settle(() => reject(new Error("channel closed while waiting for it to drain")));
    const settle = (done: () => void) => {
      channel.off("drain", onDrain);
      channel.off("close", onClose);
      done();
    };
    channel.once("drain", onDrain);
    channel.once("close", onClose);
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  if (ms <= 0) return Promise.reject(new Error("deadline passed"));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
