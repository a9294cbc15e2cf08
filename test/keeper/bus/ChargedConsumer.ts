import amqp from "amqplib";
import { expect } from "chai";

import {
  ChargedConsumer,
  ChargedLedger,
  type LedgerOutcome,
  openPgliteDatabase,
  openPostgresDatabase,
  type SqlDatabase,
} from "../../../keeper/src/bus/charged-consumer.js";
import type { ChainEvent } from "../../../keeper/src/bus/event-bus.js";
import type { BusMessageKind } from "../../../keeper/src/bus/messages.js";
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
  await db.query("TRUNCATE charged_events, merchant_revenue");
  return ledger;
}

/** One publication of an event: what the keeper sends (and the broker may deliver more than once). */
type Publication = [kind: BusMessageKind, sequence: number];

/** Every order of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
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
          expect(await ledger.handle(chargedEvent(0), "event", 1)).to.equal("applied");
          expect(await ledger.handle(chargedEvent(5), "event", 1)).to.equal("applied");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0), chargedEvent(5)]));
        });

        it("changes nothing when the same event is delivered again", async function () {
          await ledger.handle(chargedEvent(0), "event", 1);
          expect(await ledger.handle(chargedEvent(0), "event", 1)).to.equal("duplicate");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
        });

        it("undoes the effect of a removed event, once", async function () {
          await ledger.handle(chargedEvent(0), "event", 1);
          await ledger.handle(chargedEvent(5), "event", 1);
          expect(await ledger.handle(chargedEvent(0), "removed", 2)).to.equal("undone");
          expect(await ledger.handle(chargedEvent(0), "removed", 2)).to.equal("duplicate");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(5)]));
        });

        it("ignores an event that arrives after the retraction that overtook it", async function () {
          expect(await ledger.handle(chargedEvent(0), "removed", 2)).to.equal("ignored");
          expect(await ledger.handle(chargedEvent(0), "event", 1)).to.equal("duplicate");
          expect(await ledger.revenue()).to.deep.equal([]);
          expect(await ledger.events()).to.deep.equal([{ eventId: chargedEvent(0).id, sequence: 2, applied: false }]);
        });

        it("applies an event again when its block comes back after a reorg (event, removed, event)", async function () {
          expect(await ledger.handle(chargedEvent(0), "event", 1)).to.equal("applied");
          expect(await ledger.handle(chargedEvent(0), "removed", 2)).to.equal("undone");
          expect(await ledger.handle(chargedEvent(0), "event", 3)).to.equal("applied");
          // Redeliveries of each of the three change nothing.
          for (const [kind, sequence] of [
            ["event", 1],
            ["removed", 2],
            ["event", 3],
          ] as Publication[]) {
            expect(await ledger.handle(chargedEvent(0), kind, sequence), `${kind} ${sequence}`).to.equal("duplicate");
          }
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
          expect(await ledger.events()).to.deep.equal([{ eventId: chargedEvent(0).id, sequence: 3, applied: true }]);
        });

        it("ends in the latest publication's state in every delivery order, with every message delivered twice", async function () {
          this.timeout(60_000);
          const event = chargedEvent(0);
          const histories: [string, Publication[], boolean][] = [
            [
              "A→B→A",
              [
                ["event", 1],
                ["removed", 2],
                ["event", 3],
              ],
              true,
            ],
            [
              "A→B→A→B",
              [
                ["event", 1],
                ["removed", 2],
                ["event", 3],
                ["removed", 4],
              ],
              false,
            ],
          ];
          for (const [name, publications, appliedAtEnd] of histories) {
            const last = publications[publications.length - 1][1];
            for (const order of permutations(publications)) {
              ledger = await emptyLedger(db);
              const outcomes: LedgerOutcome[] = [];
              for (const [kind, sequence] of [...order, ...order])
                outcomes.push(await ledger.handle(event, kind, sequence));
              const label = `${name} delivered as ${order.map(([kind, sequence]) => `${kind}@${sequence}`).join(", ")}`;
              expect(await ledger.revenue(), label).to.deep.equal(appliedAtEnd ? expectedRevenue([event]) : []);
              expect(await ledger.events(), label).to.deep.equal([
                { eventId: event.id, sequence: last, applied: appliedAtEnd },
              ]);
              expect(outcomes.slice(order.length), `${label}: the second copies`).to.deep.equal(
                order.map(() => "duplicate"),
              );
            }
          }
        });

        it("counts an event once when a restarted keeper publishes it again with the same or a later sequence", async function () {
          // The same publication re-sent after a crash (same sequence), then once more after a rollback of other
          // blocks (later sequence, the event still applied).
          expect(await ledger.handle(chargedEvent(0), "event", 1)).to.equal("applied");
          expect(await ledger.handle(chargedEvent(0), "event", 1)).to.equal("duplicate");
          expect(await ledger.handle(chargedEvent(0), "event", 3)).to.equal("ignored");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
          expect(await ledger.handle(chargedEvent(0), "removed", 4)).to.equal("undone");
          expect(await ledger.revenue()).to.deep.equal([]);
        });

        it("applies exactly once when the same event is handled concurrently", async function () {
          const outcomes = await Promise.all([0, 1, 2, 3].map(() => ledger.handle(chargedEvent(0), "event", 1)));
          expect(outcomes.filter((outcome) => outcome === "applied")).to.have.length(1);
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
        });

        it("ends applied once when an event and its retraction and re-publication are handled concurrently", async function () {
          const publications: Publication[] = [
            ["event", 1],
            ["removed", 2],
            ["event", 3],
          ];
          await Promise.all(
            [...publications, ...publications].map(([kind, sequence]) =>
              ledger.handle(chargedEvent(0), kind, sequence),
            ),
          );
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([chargedEvent(0)]));
        });

        it("rejects another event type, naming it", async function () {
          const error = await rejectionOf(ledger.handle({ ...chargedEvent(0), name: "Subscribed" }, "event", 1));
          expect(error).to.be.instanceOf(TypeError);
          expect(error.message).to.contain("got Subscribed");
        });

        it("rejects a Charged event whose amount is not a decimal string, naming the argument", async function () {
          const bad = { ...chargedEvent(0), args: { ...chargedEvent(0).args, amount: 12 } };
          const error = await rejectionOf(ledger.handle(bad, "event", 1));
          expect(error).to.be.instanceOf(TypeError);
          expect(error.message).to.contain("args.amount must be a decimal string");
          expect(await ledger.events()).to.deep.equal([]);
        });

        it("rejects a sequence that is not a non-negative integer, naming it", async function () {
          for (const sequence of [-1, 2.5, Number.NaN]) {
            const error = await rejectionOf(ledger.handle(chargedEvent(0), "event", sequence));
            expect(error).to.be.instanceOf(TypeError);
            expect(error.message).to.contain(`sequence must be a non-negative integer, got ${sequence}`);
          }
          expect(await ledger.events()).to.deep.equal([]);
        });
      });

      describe("migrate", function () {
        it("carries a ledger over from processed_events, so the keeper's next publications act on it", async function () {
          const [applied, retracted, overtaken] = [chargedEvent(0), chargedEvent(1), chargedEvent(2)];
          await db.query("DROP TABLE charged_events");
          await db.query("CREATE TABLE processed_events (id text PRIMARY KEY)");
          await db.query("INSERT INTO processed_events (id) VALUES ($1), ($2), ($3), ($4)", [
            applied.id,
            retracted.id,
            `${retracted.id}:removed`,
            `${overtaken.id}:removed`,
          ]);
          await db.query("INSERT INTO merchant_revenue (merchant_id, total, charges) VALUES ($1, $2, 1)", [
            applied.args.merchantId,
            applied.args.amount,
          ]);

          await ledger.migrate();
          expect(await ledger.events()).to.deep.equal(
            [
              { eventId: applied.id, sequence: 0, applied: true },
              { eventId: retracted.id, sequence: 0, applied: false },
              { eventId: overtaken.id, sequence: 0, applied: false },
            ].sort((a, b) => (a.eventId < b.eventId ? -1 : 1)),
          );
          expect((await db.query("SELECT to_regclass('processed_events') AS t")).rows).to.deep.equal([{ t: null }]);
          await ledger.migrate(); // idempotent

          expect(await ledger.handle(applied, "event", 1)).to.equal("ignored");
          expect(await ledger.handle(overtaken, "event", 3)).to.equal("applied");
          expect(await ledger.handle(applied, "removed", 2)).to.equal("undone");
          expect(await ledger.revenue()).to.deep.equal(expectedRevenue([overtaken]));
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
  async function publishUntilConfirmed(events: ChainEvent[], kind: BusMessageKind, sequence: number): Promise<number> {
    for (let failures = 0; ; failures++) {
      try {
        await (kind === "event" ? bus!.publish(events, sequence) : bus!.retract(events, sequence));
        return failures;
      } catch {
        // retried below, as the sync loop does when the cursor did not advance
      }
    }
  }

  it("applies a batch published twice once, counting the second delivery as duplicates", async function () {
    await start();
    const events = chargedEvents(0, 50);
    await bus!.publish(events, 1);
    await bus!.publish(events, 1);

    await waitUntil("both copies are handled", () => consumer!.stats.delivered === 100);
    expect(consumer!.stats).to.include({ applied: 50, duplicates: 50, rejected: 0, failed: 0 });
    expect(await ledger.revenue()).to.deep.equal(expectedRevenue(events));
  });

  it("undoes retracted events and ignores only their own ids", async function () {
    await start();
    const events = chargedEvents(0, 20);
    await bus!.publish(events, 1);
    await bus!.retract(events.slice(0, 5), 2);

    await waitUntil("all 25 messages are handled", () => consumer!.stats.delivered === 25);
    expect(consumer!.stats).to.include({ applied: 20, undone: 5 });
    expect(await ledger.revenue()).to.deep.equal(expectedRevenue(events.slice(5)));
  });

  it("applies events again whose block came back after a reorg, once, whatever is re-sent", async function () {
    await start();
    const events = chargedEvents(0, 10);
    const reorged = events.slice(0, 4);
    await bus!.publish(events, 1); // block A
    await bus!.retract(reorged, 2); // A reorged out for B
    await bus!.publish(reorged, 3); // A back, the very same block hash
    // Re-sends of each publication (a keeper restart, a batch resent after a dropped connection).
    await bus!.publish(events, 1);
    await bus!.retract(reorged, 2);
    await bus!.publish(reorged, 3);

    const sent = 2 * (events.length + 2 * reorged.length);
    await waitUntil(`all ${sent} messages are handled`, () => consumer!.stats.delivered === sent);
    expect(consumer!.stats).to.include({
      applied: events.length + reorged.length,
      undone: reorged.length,
      duplicates: sent / 2,
      ignored: 0,
      rejected: 0,
      failed: 0,
    });
    expect(await ledger.revenue()).to.deep.equal(expectedRevenue(events));
  });

  it("rejects a message without a sequence header without touching the ledger", async function () {
    await start();
    const connection = await amqp.connect(RABBITMQ_URL);
    try {
      const channel = await connection.createConfirmChannel();
      const event = chargedEvent(0);
      channel.publish(exchange, `${event.address.toLowerCase()}.Charged`, Buffer.from(JSON.stringify(event)), {
        type: "event",
        messageId: event.id,
      });
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    await waitUntil("the message is handled", () => consumer!.stats.delivered === 1);
    expect(consumer!.stats).to.include({ rejected: 1, applied: 0 });
    expect(await ledger.events()).to.deep.equal([]);
  });

  it("only receives Charged events and their retractions", async function () {
    await start();
    const other = { ...chargedEvent(0), id: `${chargedEvent(0).id}-x`, name: "Subscribed" };
    await bus!.publish([other, chargedEvent(1)], 1);
    await bus!.retract([other], 2);

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
      failedPublishes += await publishUntilConfirmed(events.slice(from, from + batchSize), "event", 1);
    }
    failedPublishes += await publishUntilConfirmed(retracted, "removed", 2);
    await cutting;
    const publishSeconds = (performance.now() - started) / 1000;

    const unique = total + retracted.length;
    await waitUntil(
      "every event and retraction is in the ledger",
      async () => {
        const states = await ledger.events();
        return states.length === total && states.filter((state) => state.sequence === 2).length === retracted.length;
      },
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
