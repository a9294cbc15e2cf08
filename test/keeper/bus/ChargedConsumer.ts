import { expect } from "chai";

import {
  ChargedConsumer,
  ChargedLedger,
  openPgliteDatabase,
  openPostgresDatabase,
  type SqlDatabase,
} from "../../../keeper/src/bus/charged-consumer.js";
import type { ChainEvent } from "../../../keeper/src/bus/event-bus.js";
import { RabbitMqEventBus } from "../../../keeper/src/bus/rabbitmq.js";
import {
  chargedEvent,
  chargedEvents,
  createTestDatabase,
  deleteAmqpObjects,
  expectedRevenue,
  RABBITMQ_URL,
  rejectionOf,
  requirePostgres,
  requireRabbitMq,
  uniqueName,
  waitUntil,
} from "./services.js";
import { TcpProxy } from "./tcp-proxy.js";

// PGlite takes seconds to start on a small machine: one embedded database serves this file, emptied between tests.
let embedded: Promise<SqlDatabase> | undefined;
const embeddedDatabase = () => (embedded ??= openPgliteDatabase());

after(async function () {
  await (await embedded)?.close();
});

async function emptyLedger(db: SqlDatabase): Promise<ChargedLedger> {
  const ledger = new ChargedLedger(db);
  await ledger.migrate();
  await db.query("TRUNCATE processed_events, merchant_revenue");
  return ledger;
}

describe("ChargedLedger", function () {
  // The same specification against the embedded default and a real PostgreSQL server.
  const backends: [string, () => Promise<{ db: SqlDatabase; dispose: () => Promise<void> }>][] = [
    ["PGlite", async () => ({ db: await embeddedDatabase(), dispose: async () => {} })],
    [
      "PostgreSQL",
      async () => {
        await requirePostgres();
        const database = await createTestDatabase();
        return { db: openPostgresDatabase(database.url), dispose: database.drop };
      },
    ],
  ];

  for (const [backend, open] of backends) {
    describe(`on ${backend}`, function () {
      let db: SqlDatabase;
      let dispose: () => Promise<void>;
      let ledger: ChargedLedger;

      before(async function () {
        ({ db, dispose } = await open());
      });

      after(async function () {
        if (backend !== "PGlite") await db?.close();
        await dispose?.();
      });

      beforeEach(async function () {
        ledger = await emptyLedger(db);
      });

      describe("handle", function () {
        it("adds a Charged amount to its merchant's revenue", async function () {
          expect(await ledger.handle(chargedEvent(0), "event")).to.equal("applied");
          expect(await ledger.handle(chargedEvent(5), "event")).to.equal("applied");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0), chargedEvent(5)]));
        });

        it("changes nothing when the same event is delivered again", async function () {
          await ledger.handle(chargedEvent(0), "event");
          expect(await ledger.handle(chargedEvent(0), "event")).to.equal("duplicate");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
        });

        it("undoes the effect of a removed event, once", async function () {
          await ledger.handle(chargedEvent(0), "event");
          await ledger.handle(chargedEvent(5), "event");
          expect(await ledger.handle(chargedEvent(0), "removed")).to.equal("undone");
          expect(await ledger.handle(chargedEvent(0), "removed")).to.equal("duplicate");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(5)]));
        });

        it("ignores an event that arrives after its retraction", async function () {
          expect(await ledger.handle(chargedEvent(0), "removed")).to.equal("ignored");
          expect(await ledger.handle(chargedEvent(0), "event")).to.equal("ignored");
          expect(await ledger.revenue()).to.deep.equal([]);
        });

        it("applies exactly once when the same event is handled concurrently", async function () {
          const outcomes = await Promise.all([0, 1, 2, 3].map(() => ledger.handle(chargedEvent(0), "event")));
          expect(outcomes.filter((outcome) => outcome === "applied")).to.have.length(1);
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
        });

        it("rejects another event type, naming it", async function () {
          const error = await rejectionOf(ledger.handle({ ...chargedEvent(0), name: "Subscribed" }, "event"));
          expect(error).to.be.instanceOf(TypeError);
          expect(error.message).to.contain("got Subscribed");
        });

        it("rejects a Charged event whose amount is not a decimal string, naming the argument", async function () {
          const bad = { ...chargedEvent(0), args: { ...chargedEvent(0).args, amount: 12 } };
          const error = await rejectionOf(ledger.handle(bad, "event"));
          expect(error).to.be.instanceOf(TypeError);
          expect(error.message).to.contain("args.amount must be a decimal string");
          expect(await ledger.processedCount()).to.equal(0);
        });
      });
    });
  }
});

describe("ChargedConsumer", function () {
  let exchange: string;
  let queue: string;
  let proxy: TcpProxy;
  let ledger: ChargedLedger;
  let bus: RabbitMqEventBus | undefined;
  let consumer: ChargedConsumer | undefined;

  before(async function () {
    await requireRabbitMq();
  });

  beforeEach(async function () {
    exchange = uniqueName("test-consumer");
    queue = uniqueName("test-charged");
    const { hostname, port } = new URL(RABBITMQ_URL);
    proxy = await TcpProxy.start({ host: hostname, port: Number(port || 5672) });
    ledger = await emptyLedger(await embeddedDatabase());
  });

  afterEach(async function () {
    await bus?.close();
    await consumer?.close();
    bus = consumer = undefined;
    await proxy.close();
    await deleteAmqpObjects({ queues: [queue], exchanges: [exchange] });
  });

  /** Publisher and consumer both go through the proxy, so a cut drops both connections. */
  async function start(): Promise<void> {
    const url = proxy.rewrite(RABBITMQ_URL);
    consumer = await ChargedConsumer.start({ url, exchange, queue, ledger, initialReconnectDelayMs: 20 });
    bus = await RabbitMqEventBus.connect({ url, exchange, initialReconnectDelayMs: 20, maxReconnectDelayMs: 500 });
  }

  /** Like the keeper's sync loop: a batch that was not confirmed is sent again, never skipped. */
  async function publishUntilConfirmed(events: ChainEvent[], kind: "event" | "removed"): Promise<number> {
    for (let failures = 0; ; failures++) {
      try {
        await (kind === "event" ? bus!.publish(events) : bus!.retract(events));
        return failures;
      } catch {
        // retried below, as the sync loop does when the cursor did not advance
      }
    }
  }

  it("applies a batch published twice once, counting the second delivery as duplicates", async function () {
    await start();
    const events = chargedEvents(0, 50);
    await bus!.publish(events);
    await bus!.publish(events);

    await waitUntil("both copies are handled", () => consumer!.stats.delivered === 100);
    expect(consumer!.stats).to.include({ applied: 50, duplicates: 50, rejected: 0, failed: 0 });
    expect(await ledger.revenue()).to.deep.equal(expectedRevenue(events));
  });

  it("undoes retracted events and ignores only their own ids", async function () {
    await start();
    const events = chargedEvents(0, 20);
    await bus!.publish(events);
    await bus!.retract(events.slice(0, 5));

    await waitUntil("all 25 messages are handled", () => consumer!.stats.delivered === 25);
    expect(consumer!.stats).to.include({ applied: 20, undone: 5 });
    expect(await ledger.revenue()).to.deep.equal(expectedRevenue(events.slice(5)));
  });

  it("only receives Charged events and their retractions", async function () {
    await start();
    const other = { ...chargedEvent(0), id: `${chargedEvent(0).id}-x`, name: "Subscribed" };
    await bus!.publish([other, chargedEvent(1)]);
    await bus!.retract([other]);

    await waitUntil("the Charged event is handled", () => consumer!.stats.delivered >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(consumer!.stats).to.include({ delivered: 1, applied: 1 });
  });

  it("delivers every event exactly once in effect when the broker connection is cut and restored mid-run", async function () {
    this.timeout(120_000);
    await start();
    const total = 4000;
    const batchSize = 200;
    const events = chargedEvents(0, total);
    const retracted = events.filter((_, i) => i % 40 === 0);
    const started = performance.now();

    // Cut both connections once the consumer is well into the stream, while batches are still being published.
    const cutting = (async () => {
      await waitUntil("the consumer is mid-stream", () => consumer!.stats.delivered >= total / 4, 60_000);
      proxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 500));
      proxy.restore();
    })();
    let failedPublishes = 0;
    for (let from = 0; from < total; from += batchSize) {
      failedPublishes += await publishUntilConfirmed(events.slice(from, from + batchSize), "event");
    }
    failedPublishes += await publishUntilConfirmed(retracted, "removed");
    await cutting;
    const publishSeconds = (performance.now() - started) / 1000;

    const unique = total + retracted.length;
    await waitUntil(
      "every event and retraction is in the ledger",
      async () => (await ledger.processedCount()) === unique,
      60_000,
    );
    const stats = consumer!.stats;
    const settled = () =>
      stats.applied + stats.undone + stats.duplicates + stats.ignored + stats.rejected + stats.failed;
    await waitUntil("no delivery is in flight", () => settled() === stats.delivered);
    console.log(
      `      published ${unique} messages in ${publishSeconds.toFixed(1)} s with confirms across ${proxy.cuts} cut(s) ` +
        `(${failedPublishes} batch(es) retried by the caller); consumer: ${stats.delivered} deliveries, ` +
        `${stats.applied} applied, ${stats.undone} undone, ${stats.duplicates} duplicates absorbed`,
    );

    expect(proxy.cuts).to.equal(1);
    expect(stats).to.include({ applied: total, undone: retracted.length, ignored: 0, rejected: 0, failed: 0 });
    const retractedIds = new Set(retracted.map((event) => event.id));
    expect(await ledger.revenue()).to.deep.equal(
      expectedRevenue(events.filter((event) => !retractedIds.has(event.id))),
    );
  });
});
