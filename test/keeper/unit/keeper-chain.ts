// The keeper's parts against a real in-process Hardhat chain: event sync (with range shrinking and reorgs), the
// scheduler and the tx manager (crash resume, stuck-transaction replacement).
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import type { Eip1193Provider } from "../../../keeper/src/rpc.js";
import { PrivateKeySigner } from "../../../keeper/src/signer.js";
import { type Db, PgliteDb, toBigInt } from "../../../keeper/src/store/index.js";
import { type KeeperParts, keeperParts, type PartsOptions } from "../support/keeper-parts.js";
import { withQueryHook } from "../support/query-hook.js";
import { AMOUNT, DAY, deployThreeSubscriptions, PERIOD } from "../support/three-subscriptions.js";

const { ethers, networkHelpers, provider } = await network.create();

async function deploy() {
  const operator = new PrivateKeySigner(Wallet.createRandom().privateKey);
  const deployed = await deployThreeSubscriptions({ ethers, networkHelpers }, operator.address);
  return { ...deployed, operator, registry: await deployed.registry.getAddress() };
}

/** An EIP-1193 provider in front of the chain that fails the calls `fault` picks (a flaky or limited node). */
function faulty(fault: (method: string, params: unknown[]) => Error | undefined): Eip1193Provider {
  return {
    request: async ({ method, params }) => {
      const error = fault(method, (params ?? []) as unknown[]);
      if (error) throw error;
      return provider.request({ method, params: params as unknown[] });
    },
  };
}

/** The keeper's parts on this file's chain, the operator of `d` signing. */
function partsFor(
  d: Awaited<ReturnType<typeof deploy>>,
  options: Omit<PartsOptions, "provider" | "signer"> & { rpcProvider?: Eip1193Provider } = {},
) {
  return keeperParts(d, { ...options, provider: options.rpcProvider ?? provider, signer: d.operator });
}

async function storedSubscriptions(db: Db) {
  const rows = await db.query<{ id: unknown; status: string; next_charge_at: unknown }>(
    "SELECT id, status, next_charge_at FROM subscriptions ORDER BY id",
  );
  return rows.map((r) => ({ id: toBigInt(r.id), status: r.status, nextChargeAt: toBigInt(r.next_charge_at) }));
}

async function chargedIds(billingAddress: string, fromBlock: number): Promise<bigint[]> {
  const billing = await ethers.getContractAt("RecurringBilling", billingAddress);
  const events = await billing.queryFilter(billing.filters.Charged(), fromBlock);
  return events.map((e) => e.args.subscriptionId);
}

async function syncAll(parts: KeeperParts) {
  return parts.sync.catchUp(100, () => false);
}

describe("Keeper against a Hardhat chain", function () {
  this.timeout(120_000);

  describe("EventSync", function () {
    it("derives each subscription's status and next due time from the events", async function () {
      const d = await deploy();
      const parts = await partsFor(d);
      const result = await syncAll(parts);
      expect(result.caughtUp).to.equal(true);
      const subs = await storedSubscriptions(parts.db);
      expect(subs.map((s) => s.id)).to.deep.equal([1n, 2n, 3n]);
      for (const sub of subs) {
        expect(sub.status).to.equal("active");
        expect(sub.nextChargeAt).to.equal((await d.billing.getSubscription(d.refs[Number(sub.id) - 1])).nextChargeAt);
      }
      await d.billing.connect(d.customers[1]).cancel(d.refs[1]);
      await syncAll(parts);
      expect((await storedSubscriptions(parts.db))[1].status).to.equal("cancelled");
    });

    it("follows the contract's schedule: backlog forgiveness, a trial, a cap and a failed payment", async function () {
      const d = await deploy();
      const [, merchantAdmin] = await ethers.getSigners();
      const tokenAddress = await d.token.getAddress();
      const admin = d.billing.connect(merchantAdmin);
      await admin.createPlan(1n, tokenAddress, AMOUNT, PERIOD, 14n * DAY, 0n, 3n); // plan 2: trial, backlog 3
      await admin.createPlan(1n, tokenAddress, AMOUNT, PERIOD, 0n, 2n, 1n); // plan 3: two periods in total
      await admin.createPlan(1n, tokenAddress, AMOUNT, PERIOD, 0n, 1n, 1n); // plan 4: one period, paid at subscribe
      await d.billing.connect(d.customers[0]).subscribe(2n);
      await d.billing.connect(d.customers[1]).subscribe(3n);
      await d.billing.connect(d.customers[2]).subscribe(4n);
      const refs = [...d.refs, { ...d.refs[0], id: 4n }, { ...d.refs[1], id: 5n }, { ...d.refs[2], id: 6n }];
      await d.token.connect(d.customers[2]).approve(d.billingAddress, 0n); // subscription 3's next payment fails
      await networkHelpers.time.increase(5n * PERIOD);

      const parts = await partsFor(d);
      for (let pass = 0; pass < 8; pass++) {
        await parts.scheduler.tick((await syncAll(parts)).cursor);
        await parts.txManager.tick();
      }
      await syncAll(parts);

      const statuses = ["none", "active", "past_due", "cancelled", "lapsed", "completed"];
      const rows = await parts.db.query<{
        id: unknown;
        status: string;
        next_charge_at: unknown;
        charge_count: unknown;
        max_backlog: unknown;
      }>("SELECT id, status, next_charge_at, charge_count, max_backlog FROM subscriptions ORDER BY id");
      const stored = rows.map((row) => ({
        status: row.status,
        nextChargeAt: toBigInt(row.next_charge_at),
        chargeCount: toBigInt(row.charge_count),
        maxBacklog: toBigInt(row.max_backlog),
      }));
      const onChain = [];
      for (const ref of refs) {
        const sub = await d.billing.getSubscription(ref);
        onChain.push({
          status: statuses[Number(sub.status)],
          nextChargeAt: sub.nextChargeAt,
          chargeCount: sub.chargeCount,
          maxBacklog: sub.maxBacklog,
        });
      }
      expect(stored).to.deep.equal(onChain);
      // What the rules come to: backlog 1 forgives four of five periods; the trial subscription catches up three
      // (its backlog) of five; the capped ones complete; the failed payment leaves its period unpaid.
      expect(onChain.map((s) => [s.status, s.chargeCount])).to.deep.equal([
        ["active", 2n],
        ["active", 2n],
        ["past_due", 1n],
        ["active", 3n],
        ["completed", 2n],
        ["completed", 1n],
      ]);
    });

    it("halves the log range when the node answers 'too many results' and still stores every event", async function () {
      const d = await deploy();
      const limited = faulty((method, params) => {
        if (method !== "eth_getLogs") return undefined;
        const { fromBlock, toBlock } = params[0] as { fromBlock: string; toBlock: string };
        return Number(toBlock) - Number(fromBlock) >= 2
          ? new Error("query returned more than 10000 results")
          : undefined;
      });
      const parts = await partsFor(d, { rpcProvider: limited, range: 64 });
      const result = await parts.sync.catchUp(200, () => false);
      expect(result.caughtUp).to.equal(true);
      expect(parts.sync.sizer.size).to.be.below(64);
      expect((await storedSubscriptions(parts.db)).length).to.equal(3);
    });

    it("records each event once when a range is synced again", async function () {
      const d = await deploy();
      const db = await PgliteDb.open();
      const first = await partsFor(d, { db });
      await syncAll(first);
      const [{ n: before }] = await db.query<{ n: unknown }>("SELECT count(*) AS n FROM events");
      await db.query("UPDATE sync_cursor SET block_number = $1, block_hash = NULL", [d.startBlock - 1]);
      await syncAll(first);
      const [{ n: after }] = await db.query<{ n: unknown }>("SELECT count(*) AS n FROM events");
      expect(Number(after)).to.equal(Number(before));
    });
  });

  describe("Scheduler", function () {
    it("charges only what the chain says is due, once", async function () {
      const d = await deploy();
      const parts = await partsFor(d);
      await syncAll(parts);
      expect(await parts.scheduler.tick(0)).to.equal(0); // nothing due yet

      await networkHelpers.time.increase(PERIOD);
      // Cancelled after the sync: the store still thinks it is due, the on-chain check must drop it.
      await d.billing.connect(d.customers[2]).cancel(d.refs[2]);
      const head = await ethers.provider.getBlockNumber();
      expect(await parts.scheduler.tick(head)).to.equal(1);
      await parts.txManager.tick();
      expect(await chargedIds(d.billingAddress, head + 1)).to.deep.equal([1n, 2n]);

      // In flight until the sync has seen its events, then not due any more.
      expect(await parts.scheduler.tick(head)).to.equal(0);
      const synced = await syncAll(parts);
      expect(await parts.scheduler.tick(synced.cursor)).to.equal(0);
      expect(await chargedIds(d.billingAddress, head + 1)).to.deep.equal([1n, 2n]);
    });

    it("reads one budget's worth of candidates per free slot once the gas budget has cut a batch", async function () {
      const d = await deploy();
      // The LIMIT of every due-candidates query the scheduler makes.
      const inner = await PgliteDb.open();
      const limits: number[] = [];
      // Also inside transactions (the due query runs in one, with the memory to hash its exclusion list).
      const recording = withQueryHook(inner, (sql, params) => {
        if (/FROM subscriptions s\b[\s\S]*LIMIT \$3/.test(sql)) limits.push(Number(params?.[2]));
      });
      // A budget below two charges (a batch of one is always allowed), one transaction in flight.
      const parts = await partsFor(d, { db: recording, gasBudget: 50_000n, maxPendingTxs: 1 });
      await syncAll(parts);
      await networkHelpers.time.increase(PERIOD);
      const head = await ethers.provider.getBlockNumber();
      expect(await parts.scheduler.tick(head)).to.equal(1);
      await parts.txManager.tick();
      expect(await parts.scheduler.tick(head)).to.equal(1);
      await parts.txManager.tick();
      // maxItems while the size is unknown, then what the budget fits by the last estimate (one), not maxItems again.
      expect(limits).to.deep.equal([200, 1]);
      expect(await chargedIds(d.billingAddress, head + 1)).to.have.length(2);
    });

    it("sends nothing when the operator is not registered", async function () {
      const d = await deploy();
      const registry = await ethers.getContractAt("OperatorRegistry", d.registry);
      const [safe] = await ethers.getSigners();
      await registry.connect(safe).rotateOperators([d.operator.address], []);
      const parts = await partsFor(d);
      await syncAll(parts);
      await networkHelpers.time.increase(PERIOD);
      expect(await parts.scheduler.isRegistered()).to.equal(false);
      expect(await parts.scheduler.tick(await ethers.provider.getBlockNumber())).to.equal(0);
    });
  });

  describe("reorgs", function () {
    it("rolls back to the common ancestor, retracts the events and sends the reorged-out charge again", async function () {
      const d = await deploy();
      const parts = await partsFor(d);
      await syncAll(parts);
      await networkHelpers.time.increase(PERIOD);
      const snapshot = await networkHelpers.takeSnapshot();
      const forkBlock = await ethers.provider.getBlockNumber();

      expect(await parts.scheduler.tick(forkBlock)).to.equal(1);
      await parts.txManager.tick();
      await networkHelpers.mine(2);
      await syncAll(parts);
      const chargedAt = BigInt(await networkHelpers.time.latest());
      expect((await storedSubscriptions(parts.db)).every((s) => s.nextChargeAt > chargedAt)).to.equal(true);

      // Another branch from the fork point, longer than the first: the charge is gone from the chain.
      await snapshot.restore();
      await networkHelpers.mine(5);
      expect(await chargedIds(d.billingAddress, forkBlock + 1)).to.deep.equal([]);

      await syncAll(parts);
      expect(parts.retracted.map((e) => e.name)).to.include("Charged");
      const [{ n: after }] = await parts.db.query<{ n: unknown }>(
        "SELECT count(*) AS n FROM events WHERE block_number > $1",
        [forkBlock],
      );
      expect(Number(after)).to.equal(0);
      const now = BigInt(await networkHelpers.time.latest());
      expect((await storedSubscriptions(parts.db)).every((s) => s.nextChargeAt <= now)).to.equal(true);

      // The tx manager notices its final transaction left the chain and sends the same signed nonce again.
      await parts.txManager.tick();
      await parts.txManager.tick();
      expect(await chargedIds(d.billingAddress, forkBlock + 1)).to.deep.equal([1n, 2n, 3n]);
      await syncAll(parts);
      expect(await parts.scheduler.tick((await syncAll(parts)).cursor)).to.equal(0);
    });
  });

  describe("TxManager", function () {
    it("stores a transaction before broadcasting and resumes it by nonce after a crash", async function () {
      const d = await deploy();
      const db = await PgliteDb.open();
      // The node dies just as the charge is broadcast.
      const crashing = faulty((method) =>
        method === "eth_sendRawTransaction" ? new Error("socket hang up") : undefined,
      );
      const before = await partsFor(d, { db, rpcProvider: crashing });
      await syncAll(before);
      await networkHelpers.time.increase(PERIOD);
      expect(await before.scheduler.tick(await ethers.provider.getBlockNumber())).to.equal(1);
      const [stored] = await db.query<{ nonce: unknown; state: string }>("SELECT nonce, state FROM txs");
      expect([Number(stored.nonce), stored.state]).to.deep.equal([0, "pending"]);
      expect(await chargedIds(d.billingAddress, d.startBlock)).to.have.length(3); // only the subscribe-time charges

      const after = await partsFor(d, { db });
      await after.txManager.tick({ rebroadcast: true });
      await after.txManager.tick();
      const [final] = await db.query<{ state: string }>("SELECT state FROM txs WHERE nonce = 0");
      expect(final.state).to.equal("confirmed");
      expect(await chargedIds(d.billingAddress, d.startBlock)).to.have.length(6);
      expect(await ethers.provider.getTransactionCount(d.operator.address)).to.equal(1);
    });

    it("replaces a transaction that is not mined in time with both fees bumped, and finds the version that mined", async function () {
      const d = await deploy();
      const parts = await partsFor(d, { replaceAfterMs: 0 });
      await syncAll(parts);
      await networkHelpers.time.increase(PERIOD);
      await provider.request({ method: "evm_setAutomine", params: [false] });
      try {
        expect(await parts.scheduler.tick(await ethers.provider.getBlockNumber())).to.equal(1);
        await parts.txManager.tick();
        const attempts = await parts.db.query<{
          hash: string;
          max_fee_per_gas: unknown;
          max_priority_fee_per_gas: unknown;
        }>(
          "SELECT hash, max_fee_per_gas, max_priority_fee_per_gas FROM tx_attempts ORDER BY created_at_ms, max_fee_per_gas",
        );
        expect(attempts).to.have.length(2);
        const [first, second] = attempts.map((a) => ({
          fee: toBigInt(a.max_fee_per_gas),
          tip: toBigInt(a.max_priority_fee_per_gas),
        }));
        expect(second.fee * 100n).to.be.at.least(first.fee * 110n);
        expect(second.tip * 100n).to.be.at.least(first.tip * 110n);
        await networkHelpers.mine(1);
      } finally {
        await provider.request({ method: "evm_setAutomine", params: [true] });
      }
      await parts.txManager.tick();
      const [tx] = await parts.db.query<{ state: string; mined_hash: string }>("SELECT state, mined_hash FROM txs");
      expect(tx.state).to.equal("confirmed");
      const hashes = (await parts.db.query<{ hash: string }>("SELECT hash FROM tx_attempts")).map((a) => a.hash);
      expect(hashes).to.include(tx.mined_hash);
      expect(await ethers.provider.getTransactionCount(d.operator.address)).to.equal(1);
    });
  });
});
