import net from "node:net";

import amqp from "amqplib";
import type { Channel, ChannelModel, GetMessage } from "amqplib";
import { expect } from "chai";

import { createEventBus } from "../../../keeper/src/bus/index.js";
import { InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import { RabbitMqEventBus, RabbitMqUnavailableError } from "../../../keeper/src/bus/rabbitmq.js";
import {
  BILLING_ADDRESS,
  chargedEvent,
  chargedEvents,
  deleteAmqpObjects,
  RABBITMQ_URL,
  rejectionOf,
  requireRabbitMq,
  uniqueName,
} from "./services.js";
import { TcpProxy } from "./tcp-proxy.js";

const ROUTING_KEY = `${BILLING_ADDRESS.toLowerCase()}.Charged`;

describe("RabbitMqEventBus", function () {
  let admin: ChannelModel;
  let channel: Channel;
  let exchange: string;
  let queue: string;
  const buses: RabbitMqEventBus[] = [];

  before(async function () {
    await requireRabbitMq();
    admin = await amqp.connect(RABBITMQ_URL);
    channel = await admin.createChannel();
  });

  after(async function () {
    await admin?.close();
  });

  // Each test gets its own exchange and a queue that sees everything published to it.
  beforeEach(async function () {
    exchange = uniqueName("test-bus");
    queue = uniqueName("test-bus-all");
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchange, "#");
  });

  afterEach(async function () {
    warnings.length = 0;
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    await deleteAmqpObjects({ queues: [queue], exchanges: [exchange] });
  });

  const warnings: string[] = [];
  const logger = { info: () => {}, warn: (_fields: object, message: string) => warnings.push(message) };

  async function connect(options: { url?: string; publishTimeoutMs?: number } = {}): Promise<RabbitMqEventBus> {
    const bus = await RabbitMqEventBus.connect({
      logger,
      url: options.url ?? RABBITMQ_URL,
      exchange,
      publishTimeoutMs: options.publishTimeoutMs,
      initialReconnectDelayMs: 20,
      maxReconnectDelayMs: 200,
    });
    buses.push(bus);
    return bus;
  }

  async function drainQueue(): Promise<GetMessage[]> {
    const messages: GetMessage[] = [];
    for (
      let message = await channel.get(queue, { noAck: true });
      message;
      message = await channel.get(queue, { noAck: true })
    ) {
      messages.push(message);
    }
    return messages;
  }

  describe("connect", function () {
    it("rejects naming the broker (password masked) when nothing listens there", async function () {
      const port = await closedPort();
      const error = await RabbitMqEventBus.connect({
        url: `amqp://guest:secret@127.0.0.1:${port}`,
        connectTimeoutMs: 500,
      }).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(RabbitMqUnavailableError);
      expect((error as Error).message)
        .to.contain(`RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:${port}`)
        .and.not.contain("secret");
    });

    it("rejects a URL that is not amqp:// with a message saying what is expected", async function () {
      expect(await rejectionOf(RabbitMqEventBus.connect({ url: "http://127.0.0.1:5672" })))
        .to.be.instanceOf(TypeError)
        .with.property("message")
        .that.contains("RabbitMQ URL must start with amqp:// or amqps://");
    });

    it("rejects a non-positive publishTimeoutMs naming the option", async function () {
      expect(await rejectionOf(RabbitMqEventBus.connect({ url: RABBITMQ_URL, publishTimeoutMs: 0 })))
        .to.be.instanceOf(TypeError)
        .with.property("message")
        .that.contains("publishTimeoutMs must be a positive integer");
    });

    it("declares the exchange as a durable topic exchange", async function () {
      await deleteAmqpObjects({ queues: [queue], exchanges: [exchange] });
      await connect();
      // checkExchange fails on a missing exchange; asserting other properties fails on a mismatch.
      await channel.checkExchange(exchange);
      for (const [type, durable] of [
        ["fanout", true],
        ["topic", false],
      ] as const) {
        const probe = await admin.createChannel();
        probe.on("error", () => {});
        const mismatch = await rejectionOf(probe.assertExchange(exchange, type, { durable }));
        expect(mismatch.message).to.contain("PRECONDITION_FAILED");
      }
      await channel.assertQueue(queue, { durable: true });
    });
  });

  describe("publish", function () {
    it("sends each event as a persistent JSON message routed by lower-case address and event name", async function () {
      const bus = await connect();
      const events = chargedEvents(0, 3);
      await bus.publish(events, 5);

      const messages = await drainQueue();
      expect(messages.map((m) => m.fields.routingKey)).to.deep.equal([ROUTING_KEY, ROUTING_KEY, ROUTING_KEY]);
      expect(messages.map((m) => m.properties.messageId)).to.deep.equal(events.map((e) => `${e.id}:event:5`));
      for (const [i, message] of messages.entries()) {
        expect(message.properties.deliveryMode).to.equal(2);
        expect(message.properties.type).to.equal("event");
        expect(message.properties.headers).to.deep.include({ sequence: 5 });
        expect(message.properties.contentType).to.equal("application/json");
        expect(JSON.parse(message.content.toString())).to.deep.equal({
          ...events[i],
          address: BILLING_ADDRESS.toLowerCase(),
        });
      }
    });

    it("resolves only once the broker holds every message", async function () {
      const bus = await connect();
      await bus.publish(chargedEvents(0, 500), 1);
      // No waiting: with publisher confirms the messages are queued by the time publish resolves.
      expect((await channel.checkQueue(queue)).messageCount).to.equal(500);
    });

    it("keeps batches in order when called concurrently", async function () {
      const bus = await connect();
      await Promise.all([bus.publish(chargedEvents(0, 100), 1), bus.publish(chargedEvents(100, 100), 1)]);
      const ids = (await drainQueue()).map((m) => m.properties.messageId);
      expect(ids).to.deep.equal(chargedEvents(0, 200).map((e) => `${e.id}:event:1`));
    });

    it("rejects an event with a malformed address, naming the field, and sends none of the batch", async function () {
      const bus = await connect();
      const bad = { ...chargedEvent(1), address: "0x1234" };
      expect(await rejectionOf(bus.publish([chargedEvent(0), bad], 1)))
        .to.be.instanceOf(TypeError)
        .with.property("message")
        .that.contains("address: expected a 20-byte hex");
      expect((await channel.checkQueue(queue)).messageCount).to.equal(0);
    });

    it("rejects a sequence that is not a non-negative integer, naming it, and sends nothing", async function () {
      const bus = await connect();
      for (const sequence of [-1, 1.5, Number.NaN]) {
        expect(await rejectionOf(bus.publish([chargedEvent(0)], sequence)))
          .to.be.instanceOf(TypeError)
          .with.property("message")
          .that.contains(`sequence must be a non-negative integer, got ${sequence}`);
      }
      expect((await channel.checkQueue(queue)).messageCount).to.equal(0);
    });

    it("rejects after close", async function () {
      const bus = await connect();
      await bus.close();
      expect(await rejectionOf(bus.publish([chargedEvent(0)], 1)))
        .with.property("message")
        .that.contains("RabbitMqEventBus is closed");
    });
  });

  describe("retract", function () {
    it("sends a removed message with its own id and sequence on the `.removed` routing key", async function () {
      const bus = await connect();
      const event = chargedEvent(7);
      await bus.retract([event], 2);

      const [message, ...rest] = await drainQueue();
      expect(rest).to.have.length(0);
      expect(message.fields.routingKey).to.equal(`${ROUTING_KEY}.removed`);
      expect(message.properties.messageId).to.equal(`${event.id}:removed:2`);
      expect(message.properties.type).to.equal("removed");
      expect(message.properties.headers).to.deep.include({ sequence: 2 });
      expect(message.properties.deliveryMode).to.equal(2);
      expect(JSON.parse(message.content.toString()).id).to.equal(event.id);
    });
  });

  describe("when the broker connection drops", function () {
    let proxy: TcpProxy;

    beforeEach(async function () {
      const { hostname, port } = new URL(RABBITMQ_URL);
      proxy = await TcpProxy.start({ host: hostname, port: Number(port || 5672) });
    });

    afterEach(async function () {
      await proxy.close();
    });

    it("reconnects and resends the batch, so publish resolves with every event queued", async function () {
      const bus = await connect({ url: proxy.rewrite(RABBITMQ_URL) });
      const events = chargedEvents(0, 2000);
      const publishing = bus.publish(events, 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
      proxy.cut();
      setTimeout(() => proxy.restore(), 300);
      await publishing;

      expect(proxy.cuts).to.equal(1);
      expect(warnings).to.include("rabbitmq publish failed; resending the batch");
      const ids = new Set((await drainQueue()).map((m) => m.properties.messageId));
      expect(ids.size).to.equal(events.length);
    });

    it("rejects with RabbitMqUnavailableError after publishTimeoutMs while down, and publishes again once back", async function () {
      const bus = await connect({ url: proxy.rewrite(RABBITMQ_URL), publishTimeoutMs: 500 });
      proxy.cut();
      expect(await rejectionOf(bus.publish([chargedEvent(0)], 1)))
        .to.be.instanceOf(RabbitMqUnavailableError)
        .with.property("message")
        .that.contains("did not confirm 1 message(s)");

      proxy.restore();
      await bus.publish([chargedEvent(1)], 1);
      const ids = (await drainQueue()).map((m) => m.properties.messageId);
      expect(ids).to.deep.equal([`${chargedEvent(1).id}:event:1`]);
    });
  });
});

describe("createEventBus", function () {
  it("returns the in-process bus when no RabbitMQ URL is configured", async function () {
    expect(await createEventBus(undefined)).to.be.instanceOf(InProcessEventBus);
    expect(await createEventBus({})).to.be.instanceOf(InProcessEventBus);
  });

  it("returns a RabbitMQ bus on the configured exchange", async function () {
    await requireRabbitMq();
    const exchange = uniqueName("test-bus");
    const bus = await createEventBus({ rabbitmqUrl: RABBITMQ_URL, exchange });
    try {
      expect(bus).to.be.instanceOf(RabbitMqEventBus);
      expect((bus as RabbitMqEventBus).exchange).to.equal(exchange);
    } finally {
      await bus.close();
      await deleteAmqpObjects({ exchanges: [exchange] });
    }
  });
});

/** A port on 127.0.0.1 that nothing listens on (just released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
