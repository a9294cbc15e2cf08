/**
 * The wire format of events on the RabbitMQ bus, shared by the publisher and consumers:
 * - routing key `<lower-case contract address>.<EventName>` for an event, `<...>.<EventName>.removed` for its
 *   retraction after a reorg (so a consumer binds `*.Charged` and `*.Charged.removed`, or `#.removed` for all);
 * - `type` = "event" | "removed"; JSON body = the ChainEvent (its `id` is the event's idempotency key), whose `args`
 *   hold the event's arguments by name (numbers as decimal strings, addresses lower-case): a `Charged` of contracts
 *   v2 has `subscriptionId`, `merchantId`, `amount` and `nextChargeAt` (the period paid is the one due one period
 *   before it); the customer, token and plan are in the subscription's `Subscribed`;
 * - header `sequence` (a non-negative integer) orders the publications of one event id: a block can be reorged out
 *   and come back with the same hash, so one id may be published, retracted and published again, and only the
 *   sequence tells which came last. Every new publication of an id carries a higher sequence than all earlier ones;
 *   a re-send of the same publication (a batch resent after a dropped connection or a keeper crash) carries the
 *   same one. A consumer keeps the highest sequence it handled per event id and ignores anything at or below it,
 *   which absorbs redeliveries and messages overtaken by a later publication alike. The keeper derives it from its
 *   store's count of reorg rollbacks (see `publicationSequence`), so it survives restarts;
 * - message id = `<event id>:<type>:<sequence>`: one id per publication, the same for its re-sends.
 */
import { z } from "zod";

import type { ChainEvent } from "./event-bus.js";

export type BusMessageKind = "event" | "removed";

export const BUS_MESSAGE_KINDS: readonly BusMessageKind[] = ["event", "removed"];

/** The AMQP header carrying a message's sequence. */
export const SEQUENCE_HEADER = "sequence";

const hex = (bytes: number) => new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`);

export const chainEventSchema = z.object({
  id: z.string().min(1),
  chainId: z.number().int().positive(),
  address: z.string().regex(hex(20), "expected a 20-byte hex address"),
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an event name such as Charged"),
  blockNumber: z.number().int().nonnegative(),
  blockHash: z.string().regex(hex(32), "expected a 32-byte hex hash"),
  transactionHash: z.string().regex(hex(32), "expected a 32-byte hex hash"),
  logIndex: z.number().int().nonnegative(),
  args: z.record(z.union([z.string(), z.number(), z.boolean()])),
});

export interface EncodedBusMessage {
  routingKey: string;
  messageId: string;
  kind: BusMessageKind;
  sequence: number;
  content: Buffer;
}

export interface DecodedBusMessage {
  kind: BusMessageKind;
  sequence: number;
  event: ChainEvent;
}

/**
 * The sequence of a publication, from the number of reorg rollbacks the keeper's store has committed: an event
 * published while `reorgs` rollbacks are committed gets `2·reorgs + 1`; a retraction gets `2·reorgs` where `reorgs`
 * includes the rollback that retracts it. An event is retracted only by a rollback after its publication, and
 * published again only after that rollback, so each new publication of an id outranks the ones before it, while a
 * re-send (nothing committed in between) repeats the same number.
 */
export function publicationSequence(kind: BusMessageKind, reorgs: number): number {
  if (!Number.isSafeInteger(reorgs) || reorgs < 0 || (kind === "removed" && reorgs === 0)) {
    throw new RangeError(`No ${kind} publication after ${reorgs} reorg rollback(s)`);
  }
  return kind === "event" ? 2 * reorgs + 1 : 2 * reorgs;
}

/** Routing key for `event`: `<lower-case address>.<EventName>[.removed]`. */
export function routingKeyFor(event: Pick<ChainEvent, "address" | "name">, kind: BusMessageKind): string {
  const key = `${event.address.toLowerCase()}.${event.name}`;
  return kind === "removed" ? `${key}.removed` : key;
}

/** Message id: `<event id>:<kind>:<sequence>`, one per publication. */
export function messageIdFor(event: Pick<ChainEvent, "id">, kind: BusMessageKind, sequence: number): string {
  return `${event.id}:${kind}:${sequence}`;
}

/** Validates `event` (a bad one would get an unroutable key or an undecodable body) and encodes it. */
export function encodeBusMessage(event: ChainEvent, kind: BusMessageKind, sequence: number): EncodedBusMessage {
  if (!isSequence(sequence)) {
    throw new TypeError(
      `Cannot publish event ${JSON.stringify(event?.id)}: sequence must be a non-negative integer, got ${String(sequence)}`,
    );
  }
  const parsed = chainEventSchema.safeParse(event);
  if (!parsed.success) {
    throw new TypeError(`Cannot publish event ${JSON.stringify(event?.id)}: ${describeIssues(parsed.error)}`);
  }
  const normalised: ChainEvent = { ...parsed.data, address: parsed.data.address.toLowerCase() };
  return {
    routingKey: routingKeyFor(normalised, kind),
    messageId: messageIdFor(normalised, kind, sequence),
    kind,
    sequence,
    content: Buffer.from(JSON.stringify(normalised)),
  };
}

/** The AMQP properties a bus message is decoded from. */
export interface BusMessageProperties {
  type?: unknown;
  headers?: Record<string, unknown>;
}

/** Decodes a delivered message; throws a TypeError naming what is wrong when it is not a bus message. */
export function decodeBusMessage(content: Buffer, properties: BusMessageProperties): DecodedBusMessage {
  const { type } = properties;
  if (type !== "event" && type !== "removed") {
    throw new TypeError(`Not a bus message: property "type" is ${JSON.stringify(type)}, expected "event" or "removed"`);
  }
  const sequence = properties.headers?.[SEQUENCE_HEADER];
  if (!isSequence(sequence)) {
    throw new TypeError(
      `Not a bus message: header "${SEQUENCE_HEADER}" is ${JSON.stringify(sequence)}, expected a non-negative integer`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(content.toString("utf8"));
  } catch {
    throw new TypeError("Not a bus message: the body is not JSON");
  }
  const parsed = chainEventSchema.safeParse(body);
  if (!parsed.success) throw new TypeError(`Not a bus message: ${describeIssues(parsed.error)}`);
  return { kind: type, sequence, event: parsed.data };
}

/** A sequence number: a non-negative safe integer. */
export function isSequence(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "event"}: ${issue.message}`).join("; ");
}
