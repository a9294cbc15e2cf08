/**
 * Example consumer of the keeper's RabbitMQ bus: per-merchant revenue from Charged events, exactly once in effect.
 *
 *   npx tsx keeper/examples/charged-consumer.ts --rabbitmq amqp://guest:guest@127.0.0.1:5672 \
 *     [--postgres postgres://postgres@127.0.0.1:5432/ledger | --data-dir .charged-ledger] \
 *     [--exchange recurring-billing.events] [--queue charged-ledger]
 *
 * Without --postgres the ledger lives in an embedded PGlite database (in --data-dir, or in memory).
 * Stops on SIGINT/SIGTERM; unacked messages are redelivered to the next run and absorbed.
 */
import { parseArgs } from "node:util";

import { pino } from "pino";

import {
  ChargedConsumer,
  ChargedLedger,
  openPgliteDatabase,
  openPostgresDatabase,
  type SqlDatabase,
} from "../src/bus/charged-consumer.js";
import { DEFAULT_EXCHANGE, maskPassword } from "../src/bus/rabbitmq.js";

const USAGE =
  "usage: charged-consumer --rabbitmq amqp://user:pass@host:5672 [--postgres postgres://...] [--data-dir dir] " +
  "[--exchange name] [--queue name]";

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        rabbitmq: { type: "string" },
        postgres: { type: "string" },
        "data-dir": { type: "string" },
        exchange: { type: "string", default: DEFAULT_EXCHANGE },
        queue: { type: "string", default: "charged-ledger" },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (!values.rabbitmq) {
    console.error(`--rabbitmq is required\n${USAGE}`);
    process.exit(2);
  }

  const logger = pino({ name: "charged-consumer" });
  const db: SqlDatabase = values.postgres
    ? openPostgresDatabase(values.postgres)
    : await openPgliteDatabase(values["data-dir"]);
  const ledger = new ChargedLedger(db);
  await ledger.migrate();
  const consumer = await ChargedConsumer.start({
    url: values.rabbitmq,
    exchange: values.exchange,
    queue: values.queue,
    ledger,
    logger,
  });
  logger.info(
    { rabbitmq: maskPassword(values.rabbitmq), exchange: values.exchange, queue: values.queue },
    "charged-consumer started",
  );

  const report = setInterval(() => logger.info({ ...consumer.stats }, "stats"), 10_000);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      clearInterval(report);
      void (async () => {
        await consumer.close();
        logger.info({ ...consumer.stats, revenue: await revenueForLog(ledger) }, "charged-consumer stopped");
        await db.close();
      })();
    });
  }
}

async function revenueForLog(ledger: ChargedLedger) {
  return (await ledger.revenue()).map((row) => ({ ...row, total: row.total.toString() }));
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
