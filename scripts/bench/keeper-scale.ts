// Section (3) of `npm run bench:keeper`: the keeper at scale, on the embedded store and on PostgreSQL in one run.
// BENCH_SUBS subscriptions (100,000 by default; 1,000,000 for the closing note) are made with real `subscribe` calls
// on a local chain (customers that subscribe a hundred times each in their constructor), then every one falls due.
// For each store a fresh keeper syncs from an empty store and charges everything due; the PostgreSQL keeper runs one
// period later (its sync also reads the first period's charges), each against raw eth_getLogs over its own range. Figures: peak RSS of the keeper process, store size,
// sync time vs raw, the scheduler's due query for a full block (with one period of history and with a year of it),
// keeper CPU seconds per 1,000 charges, blocks used vs the minimum the gas limit allows.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

import { JsonRpcProvider, formatEther, formatUnits } from "ethers";
import pg from "pg";

import { KEEPER_NODE_OPTIONS } from "../../keeper/src/node-flags.js";
import { dueSubscriptionIds } from "../../keeper/src/scheduler.js";
import { type Db, openDb } from "../../keeper/src/store/index.js";
import { billingInterface } from "../../keeper/src/sync/decode.js";
import {
  type BillingDeployment,
  MONTH,
  deployBilling,
  subscribeInBulk,
} from "../../test/keeper/support/billing-setup.js";
import { TestChain } from "../../test/keeper/support/chain.js";
import {
  KEY_VARIABLE,
  KeeperProcess,
  KeeperWorkspace,
  keeperConfig,
} from "../../test/keeper/support/keeper-process.js";

import { sleep, table } from "./report.js";

const SUBS = Number(process.env.BENCH_SUBS ?? 100_000);
/**
 * A block every 2 s, as on OP-stack chains (Base, Optimism), with a 30M gas limit: about 1,150 charges/s of room. One
 * keeper process sends about 2,000 charges per CPU second, so at 200 ms blocks (11,500 charges/s) it is the keeper's
 * CPU that sets the pace, not the chain; the line "keeper charges/s vs chain room" shows which bound a run hit.
 */
const BLOCK_MS = Number(process.env.BENCH_SCALE_BLOCK_MS ?? 2000);
const BLOCK_GAS_LIMIT = 30_000_000n;
const CONFIRMATIONS = 2;
const POSTGRES_ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** chargeMany gas per item (npm run bench:gas): a full block's worth of due items for the due-query timing. */
const GAS_PER_ITEM = 23_249n;
/** The keeper's fee cap here (production settings). */
const MAX_FEE_GWEI = 500;
/**
 * What the operator holds before each store's run: every charge at the fee cap, twice over. Blocks full of the
 * keeper's own charges raise the base fee 12.5% a block (EIP-1559): at a million it went from 7 wei past the
 * 500 gwei cap and the 1,000 ETH of the test setup ran out. EDR accepts a transaction whose upfront cost (gas limit x
 * max fee) fits the balance alone, not with the others pending, and then mines no block at all while it cannot pay
 * for the next one (a node such as geth refuses it instead: the keeper reports cannot_pay_next_batch).
 */
const OPERATOR_FUNDS = 2n * BigInt(SUBS) * GAS_PER_ITEM * BigInt(MAX_FEE_GWEI) * 10n ** 9n + 10n ** 21n;
const FULL_BLOCK_ITEMS = Number(BLOCK_GAS_LIMIT / GAS_PER_ITEM);
/** Blocks per raw eth_getLogs request: at most ~32,000 logs with full blocks of charges. */
const RAW_PAGE_BLOCKS = 25;
/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

const ROOT = path.resolve(import.meta.dirname, "../..");
const NODE = path.join(ROOT, "node_modules/.bin/node");
const KEEPER_BUNDLE = path.join(ROOT, "dist/keeper.mjs");

const verdict = (met: boolean) => (met ? "PASS" : "FAIL");
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;

/** Peak resident set size of a process (the kernel's high-water mark), in MiB. */
function peakRssMiB(pid: number): number {
  const kib = Number(/VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kib / 1024;
}

/** Highest resident set size seen per phase of a process, sampled every 200 ms (where the memory goes). */
class RssSampler {
  readonly peaks = new Map<string, number>();
  private phase = "start";
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 200);
  }
  sample(): void {
    try {
      const kib = Number(/VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"))?.[1]);
      this.peaks.set(this.phase, Math.max(this.peaks.get(this.phase) ?? 0, kib / 1024));
    } catch {
      // The process exited.
    }
  }
  enter(phase: string): void {
    this.sample();
    this.phase = phase;
  }
  stop(): string {
    clearInterval(this.timer);
    return [...this.peaks].map(([phase, peak]) => `${phase} ${peak.toFixed(0)}`).join(", ");
  }
}

/** CPU seconds (user + system) a process used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The keeper's keeper_loop_seconds_total by phase: where its passes spent their time. */
async function loopPhases(keeper: KeeperProcess): Promise<Map<string, number>> {
  const phases = new Map<string, number>();
  for (const sample of await keeper.metrics()) {
    if (sample.name === "keeper_loop_seconds_total") phases.set(sample.labels.phase, sample.value);
  }
  return phases;
}

/** The machine's CPU seconds, busy and total (all cores), from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  // idle and iowait
  return { busy: (total - fields[3] - fields[4]) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

function duBytes(dir: string): number {
  return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
}

interface StoreRun {
  name: string;
  store: { dataDir: string } | { postgresUrl: string };
  size: () => Promise<number>;
  cleanup: () => Promise<void>;
}

async function embeddedStore(workspace: KeeperWorkspace): Promise<StoreRun> {
  return {
    name: "embedded (PGlite)",
    store: { dataDir: workspace.dataDir },
    size: async () => duBytes(workspace.dataDir),
    cleanup: async () => workspace.remove(),
  };
}

/** A fresh database per run on the local server, dropped at the end. */
async function postgresStore(): Promise<StoreRun> {
  const database = `bench_keeper_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${database}`;
  const postgresUrl = url.toString();
  return {
    name: "PostgreSQL",
    store: { postgresUrl },
    size: async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      const { rows } = await client.query("SELECT pg_database_size(current_database()) AS n");
      await client.end();
      return Number(rows[0].n);
    },
    cleanup: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * Raw eth_getLogs of the billing contract over a range: the baseline of the sync. Pages of RAW_PAGE_BLOCKS blocks (one
 * answer of a whole dense history is more than the node's HTTP answer can carry); no decoding, no storing.
 */
async function rawLogs(chain: TestChain, deployment: BillingDeployment, toBlock: number) {
  const provider = new JsonRpcProvider(chain.url, chain.chainId, { staticNetwork: true });
  const started = Date.now();
  let count = 0;
  for (let from = deployment.startBlock; from <= toBlock; from += RAW_PAGE_BLOCKS) {
    const to = Math.min(toBlock, from + RAW_PAGE_BLOCKS - 1);
    count += (await provider.getLogs({ address: deployment.billing, fromBlock: from, toBlock: to })).length;
  }
  const ms = Date.now() - started;
  provider.destroy();
  return { count, ms };
}

/**
 * Charged logs from `fromBlock`: blocks used and total gas of the transactions that carried them. Read in pages of
 * RAW_PAGE_BLOCKS blocks (a million charges in one answer would not fit the simulator's answer).
 */
async function chargesSince(chain: TestChain, deployment: BillingDeployment, fromBlock: number) {
  const latest = await chain.blockNumber();
  let count = 0;
  let first = Infinity;
  let last = -Infinity;
  const hashes = new Set<string>();
  const perBlock = new Map<number, number>();
  for (let from = fromBlock; from <= latest; from += RAW_PAGE_BLOCKS) {
    const logs = await chain.rpc<{ blockNumber: string; transactionHash: string }[]>("eth_getLogs", [
      {
        address: deployment.billing,
        topics: [billingInterface.getEvent("Charged")!.topicHash],
        fromBlock: `0x${from.toString(16)}`,
        toBlock: `0x${Math.min(latest, from + RAW_PAGE_BLOCKS - 1).toString(16)}`,
      },
    ]);
    count += logs.length;
    for (const log of logs) {
      first = Math.min(first, Number(log.blockNumber));
      last = Math.max(last, Number(log.blockNumber));
      hashes.add(log.transactionHash);
      perBlock.set(Number(log.blockNumber), (perBlock.get(Number(log.blockNumber)) ?? 0) + 1);
    }
  }
  let gas = 0n;
  for (const hash of hashes) {
    gas += BigInt((await chain.rpc<{ gasUsed: string }>("eth_getTransactionReceipt", [hash])).gasUsed);
  }
  // Where the blocks beyond the minimum went: blocks between the first and the last charge with under half the
  // fullest block's charges (empty ones included), by position.
  const fullest = Math.max(...perBlock.values());
  const thin: string[] = [];
  let peakBaseFee = 0n;
  for (let block = first; block <= last; block++) {
    const n = perBlock.get(block) ?? 0;
    if (n < fullest / 2) thin.push(`#${block - first + 1}: ${n}`);
    const header = await chain.rpc<{ baseFeePerGas: string }>("eth_getBlockByNumber", [
      `0x${block.toString(16)}`,
      false,
    ]);
    if (BigInt(header.baseFeePerGas) > peakBaseFee) peakBaseFee = BigInt(header.baseFeePerGas);
  }
  return { count, blocksUsed: last - first + 1, gas, fullest, thin, peakBaseFee };
}

/** Median time of the scheduler's due query for a full block of items, at `chainNow`. */
async function dueQueryMs(db: Db, chainNow: bigint): Promise<{ ms: number; items: number }> {
  const times: number[] = [];
  let items = 0;
  for (let i = 0; i < 7; i++) {
    const started = performance.now();
    items = (await dueSubscriptionIds(db, chainNow, [], FULL_BLOCK_ITEMS)).length;
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[3], items };
}

/**
 * A year of monthly history: 12 Charged events per subscription (synthetic rows, the shape the sync stores) and a
 * year of final charge transactions, added to the store the keeper built.
 */
async function addYearOfHistory(db: Db): Promise<void> {
  for (let month = 1; month <= 12; month++) {
    await db.query(
      `INSERT INTO events (id, block_number, block_hash, tx_hash, log_index, name, subscription_id, merchant_id, args)
       SELECT 'history:' || $1 || ':' || id, 1, '0x', '0x', 0, 'Charged', id, merchant_id,
              jsonb_build_object('subscriptionId', id::text, 'merchantId', merchant_id::text)
       FROM subscriptions`,
      [month],
    );
  }
  await db.query(
    `INSERT INTO txs (sender, nonce, state, to_address, data, gas_limit, subscription_ids, created_at_ms,
                      last_sent_at_ms, block_number)
     SELECT 'history', n, 'confirmed', '0x', '0x', 0, ARRAY[n]::bigint[], 0, 0, 1
     FROM generate_series(1, (SELECT count(*) FROM subscriptions) * 12 / 250) AS n`,
  );
}

interface Figures {
  store: string;
  events: number;
  peakRss: number;
  storeBytes: number;
  syncMs: number;
  rawMs: number;
  rawCount: number;
  charges: number;
  cpuPer1000: number;
  /** From the end of the sync until every charge was final. */
  chargingMs: number;
  gas: bigint;
  blocksUsed: number;
  minimumBlocks: number;
  dueMs: number;
  dueYearMs: number;
  dueItems: number;
}

async function runStore(chain: TestChain, deployment: BillingDeployment, run: StoreRun): Promise<Figures> {
  const head = (await chain.blockNumber()) - CONFIRMATIONS;
  const raw = await rawLogs(chain, deployment, head);
  const firstChargeBlock = (await chain.blockNumber()) + 1;
  await chain.setBalance(deployment.operator.address, OPERATOR_FUNDS);
  const workspace = new KeeperWorkspace();
  const config = keeperConfig(
    {
      rpcUrl: chain.url,
      chainId: chain.chainId,
      billingAddress: deployment.billing,
      startBlock: deployment.startBlock,
      dataDir: workspace.dataDir,
    },
    {
      store: run.store,
      confirmations: CONFIRMATIONS,
      pollIntervalMs: 100,
      logRange: { initial: 2000, min: 1, max: 10000 },
      batch: { gasBudget: 6_000_000, maxItems: 1000 },
      maxPendingTxs: 32,
      // Production fee settings (the test config replaces a transaction after 3 s: here it would replace the ones
      // still waiting their turn for a block).
      fees: { maxFeePerGasGwei: MAX_FEE_GWEI, maxPriorityFeePerGasGwei: 2, bumpPercent: 15, replaceAfterMs: 15_000 },
    },
  );
  // The production entry (bundled, plain node): tsx's compiler alone adds ~70 MiB to a development run.
  const keeper = KeeperProcess.spawn(NODE, [KEEPER_BUNDLE, "run", "--config", workspace.writeConfig(config)], {
    [KEY_VARIABLE]: deployment.operator.privateKey,
    // As the systemd unit and the Dockerfile run it; BENCH_KEEPER_NODE_OPTIONS overrides (e.g. "" for V8's defaults).
    NODE_OPTIONS: process.env.BENCH_KEEPER_NODE_OPTIONS ?? KEEPER_NODE_OPTIONS,
  });
  const rss = new RssSampler(keeper.pid);
  try {
    await keeper.waitForStart(120_000);
    const ready = Number((await keeper.waitForLog("store ready: syncing", 120_000)).time);
    rss.enter("sync");
    await keeper.waitForMetric("keeper_synced_block", (block) => block >= head, 60 * 60_000);
    rss.enter("charging");
    const syncMs = Date.now() - ready;
    const events = await keeper.metric("keeper_events_synced_total");
    const cpuAtSync = cpuSeconds(keeper.pid);
    const machineAtSync = machineCpu();
    const chainAtSync = cpuSeconds(process.pid);
    const loopAtSync = await loopPhases(keeper);
    const chargingStarted = Date.now();
    // Every subscription charged once more (the metric counts Charged events the receipts reported).
    await keeper.waitForMetric("keeper_charges_confirmed_total", (n) => n >= SUBS, 4 * 60 * 60_000);
    const cpu = cpuSeconds(keeper.pid) - cpuAtSync;
    const chargingMs = Date.now() - chargingStarted;
    // Who used the 2 cores while charging: the chain (simulating and mining, in this process) or the keeper.
    const machine = machineCpu();
    const cores = (seconds: number) => (seconds / (chargingMs / 1000)).toFixed(2);
    console.log(
      `  ${run.name}: CPU while charging: machine ${(
        (100 * (machine.busy - machineAtSync.busy)) /
        (machine.total - machineAtSync.total)
      ).toFixed(
        0,
      )}% busy; chain (this process) ${cores(cpuSeconds(process.pid) - chainAtSync)} cores, keeper ${cores(cpu)} cores`,
    );
    const peakRss = peakRssMiB(keeper.pid);
    const loop = await loopPhases(keeper);
    console.log(
      `  ${run.name}: loop seconds while charging (${(chargingMs / 1000).toFixed(1)} s): ${[...loop]
        .map(([phase, s]) => `${phase} ${(s - (loopAtSync.get(phase) ?? 0)).toFixed(1)}`)
        .join(", ")}`,
    );
    console.log(`  ${run.name}: RSS peaks by phase (MiB): ${rss.stop()}`);
    await keeper.kill("SIGTERM");
    // BENCH_KEEPER_LOG_DIR: the keeper's log lines per store, to see where a run's time went.
    if (process.env.BENCH_KEEPER_LOG_DIR !== undefined) {
      const file = path.join(
        process.env.BENCH_KEEPER_LOG_DIR,
        `keeper-${"dataDir" in run.store ? "embedded" : "postgres"}.jsonl`,
      );
      writeFileSync(file, keeper.logs.map((line) => JSON.stringify(line)).join("\n"));
    }
    const charges = await chargesSince(chain, deployment, firstChargeBlock);
    const paid =
      OPERATOR_FUNDS - BigInt(await chain.rpc<string>("eth_getBalance", [deployment.operator.address, "latest"]));
    console.log(
      `  ${run.name}: the operator paid ${formatEther(paid)} ETH in fees; base fee at most ${formatUnits(charges.peakBaseFee, "gwei")} gwei (EIP-1559: +12.5% a full block)`,
    );
    console.log(
      `  ${run.name}: fullest block ${charges.fullest} charges; under half of it: ${charges.thin.length === 0 ? "none" : charges.thin.slice(0, 12).join(", ")}${charges.thin.length > 12 ? ", ..." : ""}`,
    );
    const storeBytes = await run.size();

    // The scheduler's query on the store the keeper built, as of the next period (everything due again).
    const db = await openDb(run.store);
    try {
      const nextPeriod = (await chain.latestTimestamp()) + BigInt(MONTH);
      // Fresh statistics for both measurements (PGlite runs no autovacuum, so nothing analyzes it on its own).
      await db.query("ANALYZE");
      const due = await dueQueryMs(db, nextPeriod);
      await addYearOfHistory(db);
      await db.query("ANALYZE");
      const dueYear = await dueQueryMs(db, nextPeriod);
      return {
        store: run.name,
        events,
        peakRss,
        storeBytes,
        syncMs,
        rawMs: raw.ms,
        rawCount: raw.count,
        charges: charges.count,
        cpuPer1000: cpu / (charges.count / 1000),
        chargingMs,
        gas: charges.gas,
        blocksUsed: charges.blocksUsed,
        minimumBlocks: Number((charges.gas + BLOCK_GAS_LIMIT - 1n) / BLOCK_GAS_LIMIT),
        dueMs: due.ms,
        dueYearMs: dueYear.ms,
        dueItems: due.items,
      };
    } finally {
      await db.close();
    }
  } finally {
    rss.stop();
    if (keeper.running) await keeper.kill("SIGKILL");
    workspace.remove();
  }
}

export async function benchScale(): Promise<void> {
  console.log(`\n(3) scale: ${SUBS} subscriptions (BENCH_SUBS), embedded store and PostgreSQL`);
  const chain = await TestChain.start({ automine: false, blockGasLimit: BLOCK_GAS_LIMIT });
  const runs: StoreRun[] = [];
  try {
    execFileSync(NODE, [path.join(ROOT, "scripts/build/keeper.mjs")], { stdio: "inherit" });
    const setupStart = Date.now();
    const deployment = await deployBilling(chain);
    // 100 subscriptions per customer, each customer a contract that subscribes in its constructor (real `subscribe`
    // calls and Subscribed events, in two transactions per customer: a million single transactions outgrow the
    // simulator's memory).
    const { customers } = await subscribeInBulk(chain, deployment, { count: SUBS, perCustomer: 100 });
    console.log(
      `  setup: ${SUBS} subscriptions by ${customers.length} customers in ${((Date.now() - setupStart) / 1000).toFixed(0)} s`,
    );
    const figures: Figures[] = [];
    // BENCH_STORES=embedded or =postgres runs one store only (two processes can then share a long 1M run).
    const stores = new Set((process.env.BENCH_STORES ?? "embedded,postgres").split(",").map((name) => name.trim()));
    if (stores.has("embedded")) runs.push(await embeddedStore(new KeeperWorkspace()));
    if (stores.has("postgres")) runs.push(await postgresStore());
    await chain.setIntervalMining(BLOCK_MS);
    for (const run of runs) {
      // Every subscription falls due (again): the PostgreSQL keeper charges the period after the embedded one's.
      await chain.warp(MONTH);
      await sleep(3 * BLOCK_MS);
      figures.push(await runStore(chain, deployment, run));
      const f = figures.at(-1)!;
      console.log(
        `  ${f.store}: done (${f.charges} charges): ${JSON.stringify(f, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
      );
    }
    const cell = (f: (x: Figures) => string) => figures.map(f);
    table([
      ["", ...cell((f) => f.store)],
      ["events synced", ...cell((f) => String(f.events))],
      ["peak RSS of the keeper", ...cell((f) => `${f.peakRss.toFixed(0)} MiB`)],
      ["store size", ...cell((f) => mib(f.storeBytes))],
      [
        "sync from empty",
        ...cell((f) => `${(f.syncMs / 1000).toFixed(1)} s (${(f.events / (f.syncMs / 1000)).toFixed(0)} events/s)`),
      ],
      [
        "raw eth_getLogs, same range",
        ...cell((f) => `${(f.rawMs / 1000).toFixed(1)} s (${(f.rawCount / (f.rawMs / 1000)).toFixed(0)} logs/s)`),
      ],
      ["due query, full block", ...cell((f) => `${f.dueMs.toFixed(1)} ms (${f.dueItems} items)`)],
      ["due query, + a year of history", ...cell((f) => `${f.dueYearMs.toFixed(1)} ms`)],
      ["keeper CPU per 1,000 charges", ...cell((f) => `${f.cpuPer1000.toFixed(2)} s`)],
      ["blocks used / gas-limit minimum", ...cell((f) => `${f.blocksUsed} / ${f.minimumBlocks}`)],
      [
        "keeper charges/s vs chain room",
        ...cell((f) => {
          const room = Number(BLOCK_GAS_LIMIT * BigInt(f.charges)) / Number(f.gas) / (BLOCK_MS / 1000);
          return `${(f.charges / (f.chargingMs / 1000)).toFixed(0)} vs ${room.toFixed(0)} (a block per ${BLOCK_MS} ms)`;
        }),
      ],
    ]);
    for (const f of figures) {
      const target = f.store === "PostgreSQL" ? (SUBS >= 1_000_000 ? 200 : undefined) : SUBS >= 1_000_000 ? 512 : 300;
      if (target === undefined) {
        console.log(`  (PostgreSQL at 1M: <= 200 MiB; here ${f.peakRss.toFixed(0)} MiB at ${SUBS})`);
      } else {
        console.log(
          `  target: ${f.store} peak RSS <= ${target} MiB at ${SUBS}: ${f.peakRss.toFixed(0)} MiB  ${verdict(f.peakRss <= target)}`,
        );
      }
    }
    for (const f of figures) {
      const ratio = f.events / (f.syncMs / 1000) / (f.rawCount / (f.rawMs / 1000));
      console.log(`  target: ${f.store} sync >= 0.5x raw: ${ratio.toFixed(2)}x  ${verdict(ratio >= 0.5)}`);
      const blocks = f.blocksUsed / f.minimumBlocks;
      console.log(
        `  target: ${f.store} blocks <= 1.2x of the gas-limit minimum: ${blocks.toFixed(2)}x  ${verdict(blocks <= 1.2)}`,
      );
      const slowdown = f.dueYearMs / f.dueMs;
      console.log(
        `  target: ${f.store} a year of history slows the due query <= 1.5x: ${slowdown.toFixed(2)}x  ${verdict(slowdown <= 1.5)}`,
      );
    }
    console.log(
      `  target: CPU per 1,000 charges grows <= 1.5x from 100k to 1M: compare this run's figure with BENCH_SUBS=${SUBS >= 1_000_000 ? 100_000 : 1_000_000}`,
    );
  } finally {
    await chain.close();
    for (const run of runs) await run.cleanup().catch(() => {});
  }
}
