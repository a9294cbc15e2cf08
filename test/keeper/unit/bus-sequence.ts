// What the event sync delivers to the bus, end to end into the example Charged ledger: the sequence numbers of a block
// reorged out and back (the same hash, so the same event ids), the transactional outbox (the bus gets exactly what the
// store committed, across keeper deaths before and after a commit, a bus that is down, and a deposed leader), and the
// broker's redeliveries and reorderings. The chain is scripted, so a branch can come back block for block.
import { expect } from "chai";
import { type Logger, pino } from "pino";

import { ChargedLedger, openPgliteDatabase, type SqlDatabase } from "../../../keeper/src/bus/charged-consumer.js";
import { type ChainEvent, type EventBus, InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import type { BusMessageKind } from "../../../keeper/src/bus/messages.js";
import type { OutboxOptions } from "../../../keeper/src/bus/outbox.js";
import { KeeperMetrics } from "../../../keeper/src/metrics.js";
import { type Eip1193Provider, RpcClient } from "../../../keeper/src/rpc.js";
import { bindStore, type Db, migrate, PgliteDb } from "../../../keeper/src/store/index.js";
import { EventSync, type EventSyncHooks, type EventSyncOptions } from "../../../keeper/src/sync/event-sync.js";
import { billingInterface } from "../../../keeper/src/sync/decode.js";

const CHAIN_ID = 31337;
const BILLING = "0x00000000000000000000000000000000000000b1";
const logger = pino({ level: "silent" });

interface ScriptedLog {
  transactionHash: string;
  logIndex: number;
  topics: string[];
  data: string;
}

interface ScriptedBlock {
  number: number;
  hash: string;
  parentHash: string;
  logs: ScriptedLog[];
}

const hash32 = (tag: string, n: number) => `0x${tag}${n.toString(16).padStart(64 - tag.length, "0")}`;

/** A Charged log of subscription `id` (merchant `id % 3`, amount `1000 + id`). */
function chargedLog(id: number, logIndex = 0): ScriptedLog {
  const { topics, data } = billingInterface.encodeEventLog("Charged", [
    BigInt(id),
    BigInt(id % 3),
    BigInt(1000 + id),
    1_700_000_000n,
  ]);
  return { transactionHash: hash32("c", id), logIndex, topics, data };
}

/**
 * A branch: the shared blocks 0..forkAt-1, then blocks tagged `tag` up to `length - 1`, each block's logs from
 * `logs`. Building a branch twice with the same arguments gives the same hashes: the chain comes back.
 */
function branch(
  tag: string,
  forkAt: number,
  length: number,
  logs: Record<number, ScriptedLog[]> = {},
): ScriptedBlock[] {
  const blocks: ScriptedBlock[] = [];
  for (let n = 0; n < length; n++) {
    blocks.push({
      number: n,
      hash: hash32(n < forkAt ? "00" : tag, n),
      parentHash: n === 0 ? hash32("ff", 0) : blocks[n - 1].hash,
      logs: logs[n] ?? [],
    });
  }
  return blocks;
}

/** An EIP-1193 node serving whichever branch the test made canonical. */
class ScriptedChain implements Eip1193Provider {
  constructor(public blocks: ScriptedBlock[]) {}

  async request({ method, params }: { method: string; params?: unknown[] | object }): Promise<unknown> {
    const args = (params ?? []) as unknown[];
    const hex = (n: number) => `0x${n.toString(16)}`;
    switch (method) {
      case "eth_blockNumber":
        return hex(this.blocks.length - 1);
      case "eth_getBlockByNumber": {
        const block = this.blocks[Number(args[0])];
        if (block === undefined) return null;
        return {
          number: hex(block.number),
          hash: block.hash,
          parentHash: block.parentHash,
          timestamp: hex(block.number),
        };
      }
      case "eth_getLogs": {
        const { fromBlock, toBlock } = args[0] as { fromBlock: string; toBlock: string };
        return this.blocks.slice(Number(fromBlock), Number(toBlock) + 1).flatMap((block) =>
          block.logs.map((log) => ({
            address: BILLING,
            topics: log.topics,
            data: log.data,
            blockNumber: hex(block.number),
            blockHash: block.hash,
            transactionHash: log.transactionHash,
            logIndex: hex(log.logIndex),
          })),
        );
      }
      default:
        throw new Error(`ScriptedChain does not answer ${method}`);
    }
  }
}

interface Message {
  event: ChainEvent;
  kind: BusMessageKind;
  sequence: number;
}

/** What a bus consumer sees: every message the keeper published, in order (the in-process bus). */
function recordingBus(): { bus: InProcessEventBus; messages: Message[] } {
  const bus = new InProcessEventBus();
  const messages: Message[] = [];
  bus.subscribe((event, removed, sequence) => messages.push({ event, kind: removed ? "removed" : "event", sequence }));
  return { bus, messages };
}

/** A bus in front of `target` that rejects everything while `down` (a broker that does not confirm). */
function flakyBus(target: EventBus): EventBus & { down: boolean; batches: number[] } {
  const bus = {
    down: false,
    /** The size of every publication it passed on. */
    batches: [] as number[],
    async publish(events: readonly ChainEvent[], sequence: number) {
      if (bus.down) throw new Error("broker down");
      bus.batches.push(events.length);
      await target.publish(events, sequence);
    },
    async retract(events: readonly ChainEvent[], sequence: number) {
      if (bus.down) throw new Error("broker down");
      bus.batches.push(events.length);
      await target.retract(events, sequence);
    },
    close: async () => {},
  };
  return bus;
}

/** A bus on which the keeper dies before the broker confirms anything. */
const deadBus: EventBus = {
  publish: async () => {
    throw new Error("killed");
  },
  retract: async () => {
    throw new Error("killed");
  },
  close: async () => {},
};

/** A logger that keeps its warnings. */
function warningLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const stream = { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) };
  return { logger: pino({ level: "warn" }, stream), warnings };
}

interface SyncSetup {
  hooks?: EventSyncHooks;
  outbox?: OutboxOptions;
  range?: EventSyncOptions["range"];
  logger?: Logger;
}

/** A keeper's event sync on `db` (a restart is a new one on the same store). */
function keeperSync(db: Db, chain: ScriptedChain, bus: EventBus, setup: SyncSetup = {}): EventSync {
  return new EventSync(
    db,
    new RpcClient(chain, { retries: 0 }),
    bus,
    {
      chainId: CHAIN_ID,
      address: BILLING,
      startBlock: 1,
      confirmations: 0,
      reorgWindow: 64,
      range: setup.range ?? { initial: 100, min: 1, max: 1000 },
      outbox: setup.outbox,
    },
    setup.logger ?? logger,
    setup.hooks,
  );
}

/** `subscriptionId:kind:sequence` of each message: what a consumer sees, in order. */
const described = (messages: readonly Message[]) =>
  messages.map((m) => `${m.event.args.subscriptionId}:${m.kind}:${m.sequence}`);

async function outboxDepth(db: Db): Promise<number> {
  const [{ n }] = await db.query<{ n: unknown }>("SELECT count(*) AS n FROM bus_outbox");
  return Number(n);
}

async function storedEventIds(db: Db): Promise<string[]> {
  return (await db.query<{ id: string }>("SELECT id FROM events ORDER BY block_number, log_index")).map((r) => r.id);
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const syncAll = (sync: EventSync) => sync.catchUp(50, () => false);

/** Revenue per merchant the ledger must hold after the Charged events of subscriptions `ids`. */
const revenueOf = (ids: number[]) => {
  const byMerchant = new Map<string, { total: bigint; charges: number }>();
  for (const id of ids) {
    const row = byMerchant.get(String(id % 3)) ?? { total: 0n, charges: 0 };
    byMerchant.set(String(id % 3), { total: row.total + BigInt(1000 + id), charges: row.charges + 1 });
  }
  return [...byMerchant.entries()]
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([merchantId, r]) => ({ merchantId, ...r }));
};

describe("Keeper bus sequence numbers (sync to ledger)", function () {
  this.timeout(120_000);
  let ledgerDb: SqlDatabase;
  let ledger: ChargedLedger;
  let db: PgliteDb;

  before(async function () {
    ledgerDb = await openPgliteDatabase();
    ledger = new ChargedLedger(ledgerDb);
    await ledger.migrate();
  });

  after(async function () {
    await ledgerDb?.close();
  });

  beforeEach(async function () {
    await ledgerDb.query("TRUNCATE charged_events, merchant_revenue");
    db = await PgliteDb.open();
    await migrate(db);
    await bindStore(db, CHAIN_ID, BILLING);
  });

  afterEach(async function () {
    await db?.close();
  });

  async function deliver(messages: readonly Message[]): Promise<string[]> {
    const outcomes: string[] = [];
    for (const { event, kind, sequence } of messages) outcomes.push(await ledger.handle(event, kind, sequence));
    return outcomes;
  }

  // Branch A charges subscriptions 1 and 2 in block 3 and 7 in block 5; branch B forks at block 3, charges 9.
  const branchA = () => branch("aa", 3, 7, { 3: [chargedLog(1, 0), chargedLog(2, 1)], 5: [chargedLog(7)] });
  const branchB = () => branch("bb", 3, 8, { 4: [chargedLog(9)] });
  /** Branch A again, one block longer, so it wins back. */
  const branchAAgain = () => branch("aa", 3, 9, { 3: [chargedLog(1, 0), chargedLog(2, 1)], 5: [chargedLog(7)] });

  /** Syncs branch A, then B (A reorged out), then A again (B reorged out). */
  async function syncABA(sync: EventSync, chain: ScriptedChain): Promise<void> {
    chain.blocks = branchA();
    await syncAll(sync);
    chain.blocks = branchB();
    await syncAll(sync);
    chain.blocks = branchAAgain();
    await syncAll(sync);
  }

  it("publishes an event again with a higher sequence when its block comes back (A→B→A), so it ends applied once", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    const sync = keeperSync(db, chain, bus);
    await syncABA(sync, chain);

    const charge1 = messages.filter((m) => m.event.args.subscriptionId === "1");
    expect(charge1.map((m) => [m.kind, m.sequence])).to.deep.equal([
      ["event", 1],
      ["removed", 2],
      ["event", 5],
    ]);
    expect(new Set(charge1.map((m) => m.event.id)).size, "the same event id each time").to.equal(1);
    expect(messages.filter((m) => m.event.args.subscriptionId === "9").map((m) => [m.kind, m.sequence])).to.deep.equal([
      ["event", 3],
      ["removed", 4],
    ]);

    await deliver(messages);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
    // The broker redelivers everything, newest first: nothing changes.
    expect(await deliver([...messages].reverse())).to.deep.equal(messages.map(() => "duplicate"));
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });

  it("ends right when every retraction overtakes its event and every message is delivered twice", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    const sync = keeperSync(db, chain, bus);
    await syncABA(sync, chain);

    // Retractions first (requeued events arrive late), then everything again in publication order.
    const retractionsFirst = [
      ...messages.filter((m) => m.kind === "removed"),
      ...messages.filter((m) => m.kind === "event"),
    ];
    await deliver([...retractionsFirst, ...messages]);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });

  it("publishes on restart exactly the events a keeper stored before it died, once", async function () {
    const chain = new ScriptedChain(branchA());
    // The keeper commits the range, then dies before the broker confirmed anything.
    await keeperSync(db, chain, deadBus).step();
    expect(await outboxDepth(db)).to.equal(3);

    const { bus, messages } = recordingBus();
    await syncAll(keeperSync(db, chain, bus));
    expect(messages.map((m) => m.event.id)).to.deep.equal(await storedEventIds(db));
    expect(described(messages)).to.deep.equal(["1:event:1", "2:event:1", "7:event:1"]);
    expect(await outboxDepth(db)).to.equal(0);

    expect(await deliver(messages)).to.deep.equal(["applied", "applied", "applied"]);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });

  it("publishes nothing when the store transaction fails, so no crash can land between publish and commit", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    const killed = {
      beforeCommit: async () => {
        throw new Error("killed");
      },
    };
    expect(
      await keeperSync(db, chain, bus, { hooks: killed })
        .step()
        .catch((e: Error) => e.message),
    ).to.equal("killed");
    expect(messages, "a failed range commit").to.deep.equal([]);
    expect(await outboxDepth(db)).to.equal(0);

    await syncAll(keeperSync(db, chain, bus));
    expect(described(messages)).to.deep.equal(["1:event:1", "2:event:1", "7:event:1"]);

    // A rollback whose commit fails retracts nothing; the chain then flips back before the next step.
    chain.blocks = branchB();
    expect(
      await keeperSync(db, chain, bus, { hooks: killed })
        .step()
        .catch((e: Error) => e.message),
    ).to.equal("killed");
    chain.blocks = branchAAgain();
    await syncAll(keeperSync(db, chain, bus));
    expect(described(messages), "no retraction, no second publication").to.deep.equal([
      "1:event:1",
      "2:event:1",
      "7:event:1",
    ]);

    await deliver(messages);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
    const [{ reorgs }] = await db.query<{ reorgs: unknown }>("SELECT reorgs FROM sync_cursor");
    expect(Number(reorgs)).to.equal(0);
  });

  it("retracts after a reorg the events a dead keeper had committed and not published", async function () {
    const chain = new ScriptedChain(branchA());
    await keeperSync(db, chain, deadBus).step();
    // Branch A is reorged out while the keeper is down.
    chain.blocks = branchB();

    const { bus, messages } = recordingBus();
    await syncAll(keeperSync(db, chain, bus));
    expect(described(messages)).to.deep.equal([
      "1:event:1",
      "2:event:1",
      "7:event:1",
      "1:removed:2",
      "2:removed:2",
      "7:removed:2",
      "9:event:3",
    ]);
    await deliver(messages);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([9]));
  });

  it("publishes nothing of a branch whose commit died, when that branch is reorged out before the restart", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    const dying = keeperSync(db, chain, bus, {
      hooks: {
        beforeCommit: async () => {
          throw new Error("killed");
        },
      },
    });
    expect(await dying.step().catch((e: Error) => e.message)).to.equal("killed");
    chain.blocks = branchB();
    await syncAll(keeperSync(db, chain, bus));
    expect(described(messages)).to.deep.equal(["9:event:1"]);
    await deliver(messages);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([9]));
  });

  it("keeps syncing while the bus is down, then drains the grown outbox in order in bounded batches", async function () {
    const { bus: inProcess, messages } = recordingBus();
    const bus = flakyBus(inProcess);
    const metrics = new KeeperMetrics();
    const depths: number[] = [];
    const { logger: warnLogger, warnings } = warningLogger();
    const chain = new ScriptedChain(branchA());
    const sync = keeperSync(db, chain, bus, {
      // Two blocks per range: one commit each, so the outbox grows step by step.
      range: { initial: 2, min: 1, max: 2 },
      outbox: { batchSize: 2, initialRetryDelayMs: 1, maxRetryDelayMs: 5, depthIntervalMs: 0, warnIntervalMs: 0 },
      hooks: {
        onOutboxDepth: (depth) => {
          depths.push(depth);
          metrics.busOutboxDepth.set(depth);
        },
      },
      logger: warnLogger,
    });

    bus.down = true;
    await syncAll(sync);
    expect((await sync.cursor()).number, "synced to the head").to.equal(6);
    chain.blocks = branchB();
    await syncAll(sync);
    chain.blocks = branchAAgain();
    await syncAll(sync);
    expect((await sync.cursor()).number, "synced to the head").to.equal(8);
    expect(messages, "nothing got through").to.deep.equal([]);
    expect(await outboxDepth(db)).to.equal(11);
    expect(depths.at(-1)).to.equal(11);
    expect(depths, "the depth only grows while the bus is down").to.deep.equal([...depths].sort((a, b) => a - b));
    expect(await metrics.registry.getSingleMetricAsString("keeper_bus_outbox_depth")).to.contain(
      "keeper_bus_outbox_depth 11",
    );
    expect(warnings).to.include("bus outbox growing: committed events wait until the event bus confirms them");

    // The broker is back: the keeper's next passes retry in the background and the outbox drains.
    bus.down = false;
    await until("the outbox drained", async () => {
      await syncAll(sync);
      return (await outboxDepth(db)) === 0;
    });
    await sync.outbox.stop();
    expect(described(messages)).to.deep.equal([
      "1:event:1",
      "2:event:1",
      "7:event:1",
      "1:removed:2",
      "2:removed:2",
      "7:removed:2",
      "9:event:3",
      "9:removed:4",
      "1:event:5",
      "2:event:5",
      "7:event:5",
    ]);
    expect(Math.max(...bus.batches), "no publication above the batch size").to.equal(2);
    expect(await metrics.registry.getSingleMetricAsString("keeper_bus_outbox_depth")).to.contain(
      "keeper_bus_outbox_depth 0",
    );
    await deliver(messages);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });

  it("waits for a bus that does not answer at most waitMs per commit, and syncs on", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus: inProcess, messages } = recordingBus();
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    // Accepts the connection but confirms nothing until `answer` (a stalled broker).
    const stalled: EventBus = {
      publish: async (events, sequence) => {
        await answered;
        await inProcess.publish(events, sequence);
      },
      retract: async (events, sequence) => {
        await answered;
        await inProcess.retract(events, sequence);
      },
      close: async () => {},
    };
    const sync = keeperSync(db, chain, stalled, { range: { initial: 2, min: 1, max: 2 }, outbox: { waitMs: 50 } });
    const started = Date.now();
    await syncAll(sync);
    const elapsedMs = Date.now() - started;
    expect((await sync.cursor()).number, "synced to the head").to.equal(6);
    expect(elapsedMs, "three commits, each waiting 50 ms at most").to.be.below(3_000);
    expect(messages).to.deep.equal([]);

    answer();
    expect(await sync.outbox.drain()).to.equal(true);
    expect(described(messages)).to.deep.equal(["1:event:1", "2:event:1", "7:event:1"]);
    expect(await outboxDepth(db)).to.equal(0);
  });

  it("lets a deposed leader's drain stop at the lease fence; its successor re-sends the batch, absorbed", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus: inProcess, messages } = recordingBus();
    // The lease moves to another instance while this one publishes: its delete's fence fails.
    let deposed = false;
    const deposing: EventBus = {
      publish: async (events, sequence) => {
        await inProcess.publish(events, sequence);
        deposed = true;
      },
      retract: (events, sequence) => inProcess.retract(events, sequence),
      close: async () => {},
    };
    const fence = async () => {
      if (deposed) throw new Error('lease "sync" is no longer held by keeper-1: another keeper instance took over');
    };
    const leader = keeperSync(db, chain, deposing, { hooks: { beforeCommit: fence } });
    await syncAll(leader);
    expect(leader.outbox.failing).to.equal(true);
    expect(await outboxDepth(db), "the rows stay for the successor").to.equal(3);

    await syncAll(keeperSync(db, chain, inProcess));
    expect(described(messages)).to.deep.equal([
      "1:event:1",
      "2:event:1",
      "7:event:1",
      "1:event:1",
      "2:event:1",
      "7:event:1",
    ]);
    expect(await outboxDepth(db)).to.equal(0);
    expect(await deliver(messages)).to.deep.equal([
      "applied",
      "applied",
      "applied",
      "duplicate",
      "duplicate",
      "duplicate",
    ]);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });
});
