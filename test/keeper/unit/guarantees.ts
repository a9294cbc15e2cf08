// Guarantees of the keeper's sync and transaction layers, each as a test that fails when the guarantee is broken
// (issue 17's planted bugs): the cursor moves only with the events it covers, a range must start on the synced block,
// a new nonce passes the keeper's own pending ones, a nonce someone else used is given up and its charge sent again,
// confirmations are counted exactly, and a work claim is re-checked right before sending.
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";
import { InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import { Leases } from "../../../keeper/src/leases.js";
import type { Eip1193Provider } from "../../../keeper/src/rpc.js";
import { PrivateKeySigner } from "../../../keeper/src/signer.js";
import { type Db, PgliteDb, PostgresDb, toNumber } from "../../../keeper/src/store/index.js";
import { createTestDatabase, requirePostgres } from "../bus/services.js";
import { type KeeperParts, keeperParts, type PartsOptions, testEventSync } from "../support/keeper-parts.js";
import { withQueryHook } from "../support/query-hook.js";
import { deployThreeSubscriptions, PERIOD } from "../support/three-subscriptions.js";

const { ethers, networkHelpers, provider } = await network.create();
const GWEI = 10n ** 9n;

async function deploy() {
  const wallet = Wallet.createRandom();
  const operator = new PrivateKeySigner(wallet.privateKey);
  const deployed = await deployThreeSubscriptions({ ethers, networkHelpers }, operator.address);
  return { ...deployed, wallet, operator, registry: await deployed.registry.getAddress() };
}
type Deployment = Awaited<ReturnType<typeof deploy>>;

/** An EIP-1193 provider in front of the chain that may act before (or instead of) forwarding a call. */
function intercepting(hook: (method: string, params: unknown[]) => Promise<void> | void): Eip1193Provider {
  return {
    request: async ({ method, params }) => {
      await hook(method, (params ?? []) as unknown[]);
      return provider.request({ method, params: params as unknown[] });
    },
  };
}

/** The keeper's parts on this file's chain; the operator of `d` signs unless `signer` is given. */
function parts(
  d: Deployment,
  options: Omit<PartsOptions, "provider" | "signer"> & {
    rpcProvider?: Eip1193Provider;
    signer?: PrivateKeySigner;
  } = {},
) {
  return keeperParts(d, {
    txConfirmations: 2,
    ...options,
    provider: options.rpcProvider ?? provider,
    signer: options.signer ?? d.operator,
  });
}

const syncAll = (p: Pick<KeeperParts, "sync">) => p.sync.catchUp(100, () => false);

async function subscriptionStatus(db: Db, id: bigint): Promise<string | undefined> {
  const rows = await db.query<{ status: string }>("SELECT status FROM subscriptions WHERE id = $1", [String(id)]);
  return rows[0]?.status;
}

async function txRows(db: Db) {
  const rows = await db.query<{ sender: string; nonce: unknown; state: string }>(
    "SELECT sender, nonce, state FROM txs ORDER BY sender, nonce",
  );
  return rows.map((row) => ({ sender: row.sender, nonce: toNumber(row.nonce), state: row.state }));
}

async function chargedCount(d: Deployment, fromBlock: number): Promise<number> {
  return (await d.billing.queryFilter(d.billing.filters.Charged(), fromBlock)).length;
}

async function withoutAutomine<T>(fn: () => Promise<T>): Promise<T> {
  await provider.request({ method: "evm_setAutomine", params: [false] });
  try {
    return await fn();
  } finally {
    await provider.request({ method: "evm_setAutomine", params: [true] });
  }
}

describe("Keeper guarantees (sync and transactions)", function () {
  this.timeout(120_000);

  describe("EventSync", function () {
    it("moves the cursor only in the transaction that stores its events: a failed store loses nothing", async function () {
      const d = await deploy();
      const inner = await PgliteDb.open();
      // The store fails the first time events are inserted, inside the sync's transaction.
      let failures = 1;
      const failing = withQueryHook(inner, (sql) => {
        if (failures > 0 && sql.includes("INSERT INTO events")) {
          failures--;
          throw new Error("injected store failure");
        }
      });
      const p = await parts(d, { db: failing });
      const error = await syncAll(p).catch((e: Error) => e);
      expect((error as Error).message).to.equal("injected store failure");
      const result = await syncAll(p);
      expect(result.caughtUp).to.equal(true);
      for (const id of [1n, 2n, 3n])
        expect(await subscriptionStatus(inner, id), `subscription ${id}`).to.equal("active");
    });

    it("notices that the synced block was replaced between its check and the next range (a cancel the chain dropped)", async function () {
      const d = await deploy();
      // Right after the step has read (and accepted) the synced block `at`, the chain replaces it.
      const reorg: { at?: number; done: boolean; snapshot?: { restore(): Promise<void> } } = { done: false };
      const p = await parts(d, {
        rpcProvider: {
          request: async (args) => {
            const answer = await provider.request(args as { method: string; params?: unknown[] });
            const params = (args.params ?? []) as unknown[];
            if (
              !reorg.done &&
              reorg.at !== undefined &&
              args.method === "eth_getBlockByNumber" &&
              params[0] === `0x${reorg.at.toString(16)}`
            ) {
              reorg.done = true;
              await reorg.snapshot!.restore();
              await networkHelpers.mine(4);
            }
            return answer;
          },
        },
      });
      await syncAll(p);
      reorg.snapshot = await networkHelpers.takeSnapshot();
      await d.billing.connect(d.customers[1]).cancel(d.refs[1]);
      await syncAll(p);
      expect(await subscriptionStatus(p.db, 2n)).to.equal("cancelled");
      const cursor = (await p.sync.cursor()).number;
      await networkHelpers.mine(1);
      reorg.at = cursor;
      await syncAll(p);
      await syncAll(p);
      expect(reorg.done, "the reorg happened mid-step").to.equal(true);
      expect((await d.billing.getSubscription(d.refs[1])).status, "the chain dropped the cancel: Active").to.equal(1n);
      expect(await subscriptionStatus(p.db, 2n), "the store follows the chain").to.equal("active");
    });

    // [what, burst of wrong reads (ms), wrong reads in a row at least, what a wrong read answers]
    for (const [what, burstMs, inARow, answers] of [
      ["one wrong read", 0, 1, "fork"],
      ["a one-second burst of wrong reads", 1000, 1, "fork"],
      // As many as the confirmation reads (first read + re-reads): only their disagreement tells them from a reorg.
      ["four different wrong reads in a row (a flaky node, not a fork)", 0, 4, "varying"],
      // A lagging node behind a balancer, or a lagging endpoint: the head is above the block, the read finds none.
      ["four reads in a row that find no such block (a lagging node)", 0, 4, "missing"],
    ] as const) {
      it(`rolls nothing back for ${what} of the synced block's header, and still rolls back a real reorg`, async function () {
        const d = await deploy();
        const wrong = { at: -1, until: 0, reads: 0 };
        const p = await parts(d, {
          rpcProvider: {
            request: async (args) => {
              const answer = await provider.request(args as { method: string; params?: unknown[] });
              const params = (args.params ?? []) as unknown[];
              const asked = args.method === "eth_getBlockByNumber" && params[0] === `0x${wrong.at.toString(16)}`;
              if (asked && (wrong.reads < inARow || Date.now() < wrong.until)) {
                wrong.reads++;
                if (answers === "missing") return null;
                const hash =
                  answers === "varying" ? `0x${wrong.reads.toString(16).padStart(64, "e")}` : `0x${"ee".repeat(32)}`;
                return { ...(answer as object), hash };
              }
              return answer;
            },
          },
        });
        let rollbacks = 0;
        const retracted: string[] = [];
        const bus = new InProcessEventBus();
        bus.subscribe((event, removed) => removed && retracted.push(event.name));
        const sync = testEventSync(p.db, p.rpc, d, { bus, hooks: { onReorg: () => rollbacks++ } });
        await sync.catchUp(100, () => false);
        const snapshot = await networkHelpers.takeSnapshot();
        await d.billing.connect(d.customers[1]).cancel(d.refs[1]);
        await sync.catchUp(100, () => false);
        wrong.at = (await sync.cursor()).number;
        wrong.until = Date.now() + burstMs;
        await networkHelpers.mine(1);
        await sync.catchUp(100, () => false);
        await sync.catchUp(100, () => false);
        expect(wrong.reads, "wrong reads served").to.be.greaterThan(0);
        expect(rollbacks, "no rollback without a reorg").to.equal(0);
        expect(retracted, "no retraction without a reorg").to.deep.equal([]);
        expect(await subscriptionStatus(p.db, 2n)).to.equal("cancelled");

        // A real reorg (the cancel's block replaced) is still rolled back.
        await snapshot.restore();
        await networkHelpers.mine(4);
        await sync.catchUp(100, () => false);
        await sync.catchUp(100, () => false);
        expect(rollbacks).to.equal(1);
        expect(retracted).to.include("SubscriptionCancelled");
        expect(await subscriptionStatus(p.db, 2n)).to.equal("active");
      });
    }

    it("stays exactly `confirmations` blocks behind the head", async function () {
      const d = await deploy();
      const p = await parts(d, { confirmations: 3 });
      const result = await syncAll(p);
      expect(result.cursor).to.equal(result.head - 3);
      await networkHelpers.mine(2);
      const next = await syncAll(p);
      expect(next.cursor).to.equal(next.head - 3);
    });
  });

  describe("TxManager", function () {
    const noop = (d: Deployment) => ({ to: d.operator.address, data: "0x", gasLimit: 100_000n, subscriptionIds: [] });

    it("gives a new transaction the nonce after its own pending ones, not the chain's count", async function () {
      const d = await deploy();
      const p = await parts(d);
      await withoutAutomine(async () => {
        await p.txManager.send(noop(d));
        await p.txManager.send(noop(d));
        expect((await txRows(p.db)).map((row) => row.nonce)).to.deep.equal([0, 1]);
        await networkHelpers.mine(1);
      });
      expect(await ethers.provider.getTransactionCount(d.operator.address)).to.equal(2);
    });

    it("counts confirmations exactly: final at the Nth block, not one before", async function () {
      const d = await deploy();
      const p = await parts(d, { txConfirmations: 3 });
      await p.txManager.send(noop(d)); // automine: mined at once, in block N
      const state = async () => (await txRows(p.db))[0].state;
      await p.txManager.tick();
      expect(await state(), "1 confirmation").to.equal("mined");
      await networkHelpers.mine(1);
      await p.txManager.tick();
      expect(await state(), "2 confirmations").to.equal("mined");
      await networkHelpers.mine(1);
      await p.txManager.tick();
      expect(await state(), "3 confirmations").to.equal("confirmed");
    });

    it("gives up a nonce another transaction of the key used, and charges its subscriptions again", async function () {
      const d = await deploy();
      const p = await parts(d);
      await syncAll(p);
      await networkHelpers.time.increase(PERIOD);
      const from = await ethers.provider.getBlockNumber();
      await withoutAutomine(async () => {
        expect(await p.scheduler.tick(from)).to.equal(1);
        // Someone else with the same key replaces nonce 0 with a transfer (higher fees), and it mines.
        const other = d.wallet.connect(ethers.provider);
        await other.sendTransaction({
          to: other.address,
          nonce: 0,
          maxFeePerGas: 900n * GWEI,
          maxPriorityFeePerGas: 50n * GWEI,
        });
        await provider.request({
          method: "hardhat_dropTransaction",
          params: [(await p.db.query<{ hash: string }>("SELECT hash FROM tx_attempts"))[0].hash],
        });
        await networkHelpers.mine(1);
      });
      expect(await chargedCount(d, from + 1)).to.equal(0);
      for (let i = 0; i < 5 && (await chargedCount(d, from + 1)) < 3; i++) {
        await p.txManager.tick();
        await networkHelpers.mine(1);
        await p.scheduler.tick((await syncAll(p)).cursor);
      }
      expect(await chargedCount(d, from + 1), "charged again on a new nonce").to.equal(3);
      const rows = await txRows(p.db);
      expect(rows.find((row) => row.nonce === 0)?.state).to.equal("superseded");
    });
  });

  describe("Scheduler with work leases (PostgreSQL server)", function () {
    let database: { url: string; drop: () => Promise<void> } | undefined;
    const pools: PostgresDb[] = [];

    before(async function () {
      await requirePostgres();
      database = await createTestDatabase();
    });

    after(async function () {
      await Promise.all(pools.map((pool) => pool.close()));
      await database?.drop();
    });

    it("does not send claims that lapsed while it stalled and another instance took over", async function () {
      const d = await deploy();
      const [safe] = await ethers.getSigners();
      const second = new PrivateKeySigner(Wallet.createRandom().privateKey);
      await networkHelpers.setBalance(second.address, 10n ** 20n);
      await (
        await ethers.getContractAt("OperatorRegistry", d.registry)
      )
        .connect(safe)
        .rotateOperators([], [second.address]);
      for (let i = 0; i < 2; i++) pools.push(await PostgresDb.open(database!.url));
      const TTL = 2;
      const leasesA = new Leases(pools[0], "a", d.operator.address.toLowerCase(), TTL);
      const leasesB = new Leases(pools[1], "b", second.address.toLowerCase(), TTL);
      // Instance A stalls in its simulation until released.
      let release: () => void = () => {};
      const stalled = new Promise<void>((resolve) => (release = resolve));
      let stall = true;
      const a = await parts(d, {
        db: pools[0],
        leases: leasesA,
        rpcProvider: intercepting(async (method) => {
          if (stall && method === "eth_estimateGas") await stalled;
        }),
      });
      const b = await parts(d, { db: pools[1], leases: leasesB, signer: second });
      const synced = await syncAll(a);
      await networkHelpers.time.increase(PERIOD);
      await networkHelpers.mine(1);

      const sentByA = a.scheduler.tick(synced.cursor);
      await new Promise((resolve) => setTimeout(resolve, (TTL + 1) * 1000));
      expect(await b.scheduler.tick(synced.cursor), "B took the lapsed claims and sent").to.equal(1);
      stall = false;
      release();
      expect(await sentByA, "A sends nothing it no longer holds").to.equal(0);
      const senders = new Set((await txRows(pools[0])).map((row) => row.sender));
      expect([...senders]).to.deep.equal([second.address.toLowerCase()]);
    });
  });
});
