// The sequence numbers the event sync puts on bus publications, end to end into the example Charged ledger: a block
// reorged out and back (the same hash, so the same event ids), keeper restarts that re-send what they published, and
// the broker's redeliveries and reorderings. The chain is scripted, so a branch can come back block for block.
import { expect } from "chai";
import { pino } from "pino";

import { ChargedLedger, openPgliteDatabase, type SqlDatabase } from "../../../keeper/src/bus/charged-consumer.js";
import { type ChainEvent, type EventBus, InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import type { BusMessageKind } from "../../../keeper/src/bus/messages.js";
import { type Eip1193Provider, RpcClient } from "../../../keeper/src/rpc.js";
import { bindStore, type Db, migrate, PgliteDb } from "../../../keeper/src/store/index.js";
import { EventSync, type EventSyncHooks } from "../../../keeper/src/sync/event-sync.js";
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
    `0x${(id + 1).toString(16).padStart(40, "0")}`,
    BigInt(1000 + id),
    0n,
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

/** A keeper's event sync on `db` (a restart is a new one on the same store). */
function keeperSync(db: Db, chain: ScriptedChain, bus: EventBus, hooks: EventSyncHooks = {}): EventSync {
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
      range: { initial: 100, min: 1, max: 1000 },
    },
    logger,
    hooks,
  );
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

  it("publishes an event again with a higher sequence when its block comes back (A→B→A), so it ends applied once", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    const sync = keeperSync(db, chain, bus);

    await syncAll(sync);
    chain.blocks = branchB();
    await syncAll(sync);
    chain.blocks = branch("aa", 3, 9, { 3: [chargedLog(1, 0), chargedLog(2, 1)], 5: [chargedLog(7)] }); // A, longer
    await syncAll(sync);

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
    await syncAll(sync);
    chain.blocks = branchB();
    await syncAll(sync);
    chain.blocks = branch("aa", 3, 9, { 3: [chargedLog(1, 0), chargedLog(2, 1)], 5: [chargedLog(7)] });
    await syncAll(sync);

    // Retractions first (requeued events arrive late), then everything again in publication order.
    const retractionsFirst = [
      ...messages.filter((m) => m.kind === "removed"),
      ...messages.filter((m) => m.kind === "event"),
    ];
    await deliver([...retractionsFirst, ...messages]);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });

  it("re-sends with the same sequence after a crash between publishing and committing, so nothing counts twice", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    // The keeper dies after the broker confirmed a range, before its store transaction commits.
    const crashing = keeperSync(db, chain, bus, {
      beforeCommit: async () => {
        throw new Error("killed");
      },
    });
    const error = await crashing.step().catch((e: Error) => e);
    expect(error).to.have.property("message", "killed");
    const beforeRestart = messages.length;
    expect(beforeRestart).to.equal(3);

    const restarted = keeperSync(db, chain, bus);
    await syncAll(restarted);
    expect(messages.slice(beforeRestart).map((m) => [m.event.id, m.kind, m.sequence])).to.deep.equal(
      messages.slice(0, beforeRestart).map((m) => [m.event.id, m.kind, m.sequence]),
    );

    const outcomes = await deliver(messages);
    expect(outcomes).to.deep.equal(["applied", "applied", "applied", "duplicate", "duplicate", "duplicate"]);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
  });

  it("re-sends a retraction with the same sequence when the keeper dies before its rollback commits", async function () {
    const chain = new ScriptedChain(branchA());
    const { bus, messages } = recordingBus();
    await syncAll(keeperSync(db, chain, bus));
    chain.blocks = branchB();

    // The retraction reaches the broker, then the keeper dies before the rollback commits.
    const dying: EventBus = {
      publish: (events, sequence) => bus.publish(events, sequence),
      retract: async (events, sequence) => {
        await bus.retract(events, sequence);
        throw new Error("killed");
      },
      close: async () => {},
    };
    expect(
      await keeperSync(db, chain, dying)
        .step()
        .catch((e: Error) => e.message),
    ).to.equal("killed");
    const firstRetraction = messages.filter((m) => m.kind === "removed");
    expect(firstRetraction.map((m) => m.sequence)).to.deep.equal([2, 2, 2]);

    await syncAll(keeperSync(db, chain, bus));
    const retractions = messages.filter((m) => m.kind === "removed");
    expect(retractions.map((m) => [m.event.id, m.sequence])).to.deep.equal(
      [...firstRetraction, ...firstRetraction].map((m) => [m.event.id, 2]),
    );
    // Block A comes back: published after the committed rollback, above its retraction.
    chain.blocks = branch("aa", 3, 10, { 3: [chargedLog(1, 0), chargedLog(2, 1)], 5: [chargedLog(7)] });
    await syncAll(keeperSync(db, chain, bus));

    await deliver(messages);
    expect(await ledger.revenue()).to.deep.equal(revenueOf([1, 2, 7]));
    const [{ reorgs }] = await db.query<{ reorgs: unknown }>("SELECT reorgs FROM sync_cursor");
    expect(Number(reorgs)).to.equal(2);
  });
});
