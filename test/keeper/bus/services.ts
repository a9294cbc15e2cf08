// Real services for the bus tests: reachability checks that say how to start what is missing, unique object names,
// throw-away PostgreSQL databases and synthetic Charged events.
import { randomBytes } from "node:crypto";
import net from "node:net";

import amqp from "amqplib";
import pg from "pg";

import type { ChainEvent } from "../../../keeper/src/bus/event-bus.js";

export const RABBITMQ_URL = process.env.RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
export const POSTGRES_URL = process.env.POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Fails with which service is down and how to start it, instead of a bare ECONNREFUSED deep in a test. */
export async function requireRabbitMq(): Promise<void> {
  await requireService("RabbitMQ", RABBITMQ_URL, 5672, "rabbitmq-server -detached");
}

export async function requirePostgres(): Promise<void> {
  await requireService(
    "PostgreSQL",
    POSTGRES_URL,
    5432,
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
  );
}

async function requireService(name: string, url: string, defaultPort: number, start: string): Promise<void> {
  const { hostname, port } = new URL(url);
  const target = { host: hostname, port: Number(port || defaultPort) };
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(target, () => {
        socket.end();
        resolve();
      });
      socket.setTimeout(2_000, () => socket.destroy(new Error("timed out")));
      socket.on("error", reject);
    });
  } catch (error) {
    throw new Error(
      `${name} is not reachable at ${target.host}:${target.port} (${(error as Error).message}): start it with \`${start}\``,
    );
  }
}

/** A name no other test run uses, e.g. `test-bus-3f9a0c1d`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** Deletes exchanges and queues a test declared (they are durable, so they would outlive the run). */
export async function deleteAmqpObjects(objects: { exchanges?: string[]; queues?: string[] }): Promise<void> {
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    for (const queue of objects.queues ?? []) await channel.deleteQueue(queue);
    for (const exchange of objects.exchanges ?? []) await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

/** A fresh database `test_<random>` on the PostgreSQL server; `drop` removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `test_${randomBytes(6).toString("hex")}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export const CHAIN_ID = 31337;
/** Mixed case on purpose: the bus must lower-case it in routing keys and bodies. */
export const BILLING_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
export const MERCHANTS = 5;

/** The i-th synthetic Charged event: valid shape, unique id, merchant `i % MERCHANTS`, amount `1000 + i`. */
export function chargedEvent(i: number): ChainEvent {
  const blockNumber = 100 + Math.floor(i / 10);
  const blockHash = `0x${blockNumber.toString(16).padStart(64, "b")}`;
  const transactionHash = `0x${i.toString(16).padStart(64, "c")}`;
  const logIndex = i % 10;
  return {
    id: `${CHAIN_ID}:${blockHash}:${transactionHash}:${logIndex}`,
    chainId: CHAIN_ID,
    address: BILLING_ADDRESS,
    name: "Charged",
    blockNumber,
    blockHash,
    transactionHash,
    logIndex,
    args: {
      subscriptionId: String(i),
      merchantId: String(i % MERCHANTS),
      amount: String(1000 + i),
      nextChargeAt: "1700000000",
    },
  };
}

export function chargedEvents(from: number, count: number): ChainEvent[] {
  return Array.from({ length: count }, (_, k) => chargedEvent(from + k));
}

/** Revenue per merchant id that a ledger must hold after `events`. */
export function expectedRevenue(
  events: readonly ChainEvent[],
): { merchantId: string; total: bigint; charges: number }[] {
  const byMerchant = new Map<string, { total: bigint; charges: number }>();
  for (const event of events) {
    const merchantId = String(event.args.merchantId);
    const row = byMerchant.get(merchantId) ?? { total: 0n, charges: 0 };
    row.total += BigInt(event.args.amount as string);
    row.charges += 1;
    byMerchant.set(merchantId, row);
  }
  return [...byMerchant.entries()]
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([merchantId, row]) => ({ merchantId, ...row }));
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The error `promise` rejects with; fails when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}
