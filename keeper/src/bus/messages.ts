/**
 * The wire format of events on the RabbitMQ bus, shared by the publisher and consumers:
 * - routing key `<lower-case contract address>.<EventName>` for an event, `<...>.<EventName>.removed` for its
 *   retraction after a reorg (so a consumer binds `*.Charged` and `*.Charged.removed`, or `#.removed` for all);
 * - message id = the event's idempotency key, with a `:removed` suffix for a retraction, so consumers dedupe
 *   redeliveries by message id and a retraction is never mistaken for a duplicate of its event;
 * - `type` = "event" | "removed"; JSON body = the ChainEvent.
 */
import { z } from "zod";

import type { ChainEvent } from "./event-bus.js";

export type BusMessageKind = "event" | "removed";

export const BUS_MESSAGE_KINDS: readonly BusMessageKind[] = ["event", "removed"];

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
  content: Buffer;
}

export interface DecodedBusMessage {
  kind: BusMessageKind;
  event: ChainEvent;
}

/** Routing key for `event`: `<lower-case address>.<EventName>[.removed]`. */
export function routingKeyFor(event: Pick<ChainEvent, "address" | "name">, kind: BusMessageKind): string {
  const key = `${event.address.toLowerCase()}.${event.name}`;
  return kind === "removed" ? `${key}.removed` : key;
}

/** Message id: the event's idempotency key, suffixed `:removed` for a retraction. */
export function messageIdFor(event: Pick<ChainEvent, "id">, kind: BusMessageKind): string {
  return kind === "removed" ? `${event.id}:removed` : event.id;
}

/** Validates `event` (a bad one would get an unroutable key or an undecodable body) and encodes it. */
export function encodeBusMessage(event: ChainEvent, kind: BusMessageKind): EncodedBusMessage {
  const parsed = chainEventSchema.safeParse(event);
  if (!parsed.success) {
    throw new TypeError(`Cannot publish event ${JSON.stringify(event?.id)}: ${describeIssues(parsed.error)}`);
  }
  const normalised: ChainEvent = { ...parsed.data, address: parsed.data.address.toLowerCase() };
  return {
    routingKey: routingKeyFor(normalised, kind),
    messageId: messageIdFor(normalised, kind),
    kind,
    content: Buffer.from(JSON.stringify(normalised)),
  };
}

/** Decodes a delivered message; throws a TypeError naming what is wrong when it is not a bus message. */
export function decodeBusMessage(content: Buffer, type: unknown): DecodedBusMessage {
  if (type !== "event" && type !== "removed") {
    throw new TypeError(`Not a bus message: property "type" is ${JSON.stringify(type)}, expected "event" or "removed"`);
  }
  let body: unknown;
  try {
    body = JSON.parse(content.toString("utf8"));
  } catch {
    throw new TypeError("Not a bus message: the body is not JSON");
  }
  const parsed = chainEventSchema.safeParse(body);
  if (!parsed.success) throw new TypeError(`Not a bus message: ${describeIssues(parsed.error)}`);
  return { kind: type, event: parsed.data };
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "event"}: ${issue.message}`).join("; ");
}
