// Leases that let several keeper instances share one store: the sync leader lease and the work leases on due
// subscriptions, against a real PostgreSQL server (several connection pools, as several processes) and PGlite.
import { expect } from "chai";

import { LeaseLostError, Leases, SYNC_LEASE } from "../../../keeper/src/leases.js";
import { type Db, migrate, PgliteDb, PostgresDb } from "../../../keeper/src/store/index.js";
import { createTestDatabase, rejectionOf, requirePostgres } from "../bus/services.js";

const KEY_A = "0x000000000000000000000000000000000000000a";
const KEY_B = "0x000000000000000000000000000000000000000b";
const KEY_C = "0x000000000000000000000000000000000000000c";
const NOW = 1_000_000n;

/** `count` active subscriptions due at NOW (ids 1..count) of merchant 1. */
async function seedDue(db: Db, count: number): Promise<void> {
  await db.query("TRUNCATE subscriptions, merchants, work_leases, leases, txs CASCADE");
  await db.query(
    `INSERT INTO subscriptions (id, merchant_id, customer, plan_id, token, amount, period, max_charges, status,
       next_charge_at, charge_count)
     SELECT i, 1, '0xc', 1, '0xt', 10, 2592000, 0, 'active', $2, 1 FROM generate_series(1, $1) AS i`,
    [count, NOW.toString()],
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Leases (PostgreSQL server)", function () {
  this.timeout(60_000);
  let database: { url: string; drop: () => Promise<void> };
  /** One pool per simulated keeper instance, as separate processes would have. */
  let pools: PostgresDb[] = [];

  before(async function () {
    await requirePostgres();
    database = await createTestDatabase();
    pools = await Promise.all([1, 2, 3].map(() => PostgresDb.open(database.url)));
    await migrate(pools[0]);
  });

  after(async function () {
    await Promise.all(pools.map((pool) => pool.close()));
    await database?.drop();
  });

  describe("acquire", function () {
    beforeEach(async function () {
      await pools[0].query("TRUNCATE leases");
    });

    it("gives the sync lease to one instance at a time and renews it for its holder", async function () {
      const a = new Leases(pools[0], "a", KEY_A, 30);
      const b = new Leases(pools[1], "b", KEY_B, 30);
      const results = await Promise.all([a.acquire(SYNC_LEASE), b.acquire(SYNC_LEASE)]);
      expect(results.filter(Boolean)).to.have.length(1);
      const [holder, other] = results[0] ? [a, b] : [b, a];
      expect(await holder.acquire(SYNC_LEASE)).to.equal(true);
      expect(await other.acquire(SYNC_LEASE)).to.equal(false);
    });

    it("hands the lease to another instance once it expired", async function () {
      const a = new Leases(pools[0], "a", KEY_A, 1);
      const b = new Leases(pools[1], "b", KEY_B, 1);
      expect(await a.acquire(SYNC_LEASE)).to.equal(true);
      expect(await b.acquire(SYNC_LEASE)).to.equal(false);
      await sleep(1_100);
      expect(await b.acquire(SYNC_LEASE)).to.equal(true);
      expect(await a.acquire(SYNC_LEASE)).to.equal(false);
    });

    it("gives a restarted keeper (same key, new instance id) its lease back at once", async function () {
      expect(await new Leases(pools[0], "host-1", KEY_A, 30).acquire(SYNC_LEASE)).to.equal(true);
      expect(await new Leases(pools[1], "host-2", KEY_A, 30).acquire(SYNC_LEASE)).to.equal(true);
      expect(await new Leases(pools[2], "c", KEY_C, 30).acquire(SYNC_LEASE)).to.equal(false);
    });

    it("lets another instance take over at once after a release", async function () {
      const a = new Leases(pools[0], "a", KEY_A, 30);
      const b = new Leases(pools[1], "b", KEY_B, 30);
      expect(await a.acquire(SYNC_LEASE)).to.equal(true);
      await a.release(SYNC_LEASE);
      expect(await b.acquire(SYNC_LEASE)).to.equal(true);
    });
  });

  describe("fence", function () {
    it("rolls back the transaction of an instance whose lease was taken over", async function () {
      await pools[0].query("TRUNCATE leases, meta");
      const a = new Leases(pools[0], "a", KEY_A, 1);
      const b = new Leases(pools[1], "b", KEY_B, 1);
      expect(await a.acquire(SYNC_LEASE)).to.equal(true);
      await pools[0].transaction(async (tx) => {
        await a.fence(tx, SYNC_LEASE);
        await tx.query("INSERT INTO meta (key, value) VALUES ('by-a', '1')");
      });
      await sleep(1_100);
      expect(await b.acquire(SYNC_LEASE)).to.equal(true);
      const error = await rejectionOf(
        pools[0].transaction(async (tx) => {
          await tx.query("INSERT INTO meta (key, value) VALUES ('stale-a', '1')");
          await a.fence(tx, SYNC_LEASE);
        }),
      );
      expect(error).to.be.instanceOf(LeaseLostError);
      expect(error.message).to.match(/no longer held by a/);
      const keys = await pools[0].query<{ key: string }>("SELECT key FROM meta ORDER BY key");
      expect(keys.map((row) => row.key)).to.deep.equal(["by-a"]);
    });
  });

  describe("claimDue", function () {
    it("gives instances claiming at the same time disjoint subscriptions until all are claimed", async function () {
      await seedDue(pools[0], 600);
      const instances = [KEY_A, KEY_B, KEY_C].map((key, i) => new Leases(pools[i], `i${i}`, key, 30));
      const claimed = instances.map(() => [] as bigint[]);
      for (let round = 0; round < 10; round++) {
        const batches = await Promise.all(
          instances.map((leases) => leases.claimDue({ chainNow: NOW, exclude: [], limit: 50 })),
        );
        batches.forEach((batch, i) => claimed[i].push(...batch));
      }
      const all = claimed.flat().map(Number);
      expect(new Set(all).size, "no subscription claimed twice").to.equal(all.length);
      expect(all.length).to.equal(600);
      for (const mine of claimed) expect(mine.length).to.be.above(0);
      const rows = await pools[0].query<{ holder: string; n: string }>(
        "SELECT holder, count(*)::text AS n FROM work_leases GROUP BY holder ORDER BY holder",
      );
      expect(rows.map((row) => Number(row.n))).to.deep.equal(claimed.map((c) => c.length));
    });

    it("skips another instance's live claims and takes them over once they expired", async function () {
      await seedDue(pools[0], 10);
      const a = new Leases(pools[0], "a", KEY_A, 1);
      const b = new Leases(pools[1], "b", KEY_B, 1);
      expect((await a.claimDue({ chainNow: NOW, exclude: [], limit: 4 })).map(Number)).to.deep.equal([1, 2, 3, 4]);
      expect((await b.claimDue({ chainNow: NOW, exclude: [], limit: 100 })).map(Number)).to.deep.equal([
        5, 6, 7, 8, 9, 10,
      ]);
      await sleep(1_100);
      const takeover = await b.claimDue({ chainNow: NOW, exclude: [], limit: 100 });
      expect(takeover.map(Number)).to.include.members([1, 2, 3, 4]);
      expect(await a.renew([1n, 2n])).to.deep.equal([]);
    });

    it("claims only subscriptions that are due, not excluded, and not of a paused merchant", async function () {
      await seedDue(pools[0], 6);
      await pools[0].query("UPDATE subscriptions SET next_charge_at = $1 WHERE id = 1", [(NOW + 1n).toString()]);
      await pools[0].query("UPDATE subscriptions SET retry_at = $1 WHERE id = 2", [(NOW + 1n).toString()]);
      await pools[0].query("UPDATE subscriptions SET status = 'cancelled' WHERE id = 3");
      await pools[0].query("UPDATE subscriptions SET merchant_id = 2 WHERE id = 4");
      await pools[0].query("INSERT INTO merchants (id, paused) VALUES (2, true)");
      const a = new Leases(pools[0], "a", KEY_A, 30);
      expect(await a.claimDue({ chainNow: NOW, exclude: [5n], limit: 100 })).to.deep.equal([6n]);
    });
  });

  describe("releaseWork", function () {
    it("leaves only live claims in the table: released rows are gone, and claimable again while due", async function () {
      await seedDue(pools[0], 8);
      const a = new Leases(pools[0], "a", KEY_A, 30);
      const claimed = await a.claimDue({ chainNow: NOW, exclude: [], limit: 6 });
      await a.releaseWork(claimed.slice(0, 4));
      const rows = await pools[0].query<{ id: string; holder: string }>(
        "SELECT subscription_id::text AS id, holder FROM work_leases ORDER BY subscription_id",
      );
      // Claims 5 and 6 are live; 1-4 released (gone); 7 and 8 never claimed (rows made for the claim window).
      expect(rows.filter((row) => row.holder === "a").map((row) => row.id)).to.deep.equal(["5", "6"]);
      expect(rows.map((row) => row.id)).to.not.include.members(["1", "2", "3", "4"]);
      // Still due (not sent): another instance claims them.
      const b = new Leases(pools[1], "b", KEY_B, 30);
      expect((await b.claimDue({ chainNow: NOW, exclude: [], limit: 10 })).map(Number)).to.deep.equal([
        1, 2, 3, 4, 7, 8,
      ]);
    });
  });

  describe("renewInFlight", function () {
    it("keeps the claims of this key's open transactions and, after a restart, drops the idle ones", async function () {
      await seedDue(pools[0], 4);
      const before = new Leases(pools[0], "old-process", KEY_A, 30);
      await before.claimDue({ chainNow: NOW, exclude: [], limit: 4 });
      await pools[0].query(
        `INSERT INTO txs (sender, nonce, state, to_address, data, gas_limit, subscription_ids, created_at_ms, last_sent_at_ms)
         VALUES ($1, 0, 'pending', '0xb', '0x', 100000, '{1,2}', 0, 0)`,
        [KEY_A],
      );
      const after = new Leases(pools[1], "new-process", KEY_A, 30);
      await after.renewInFlight({ dropIdle: true });
      const rows = await pools[0].query<{ subscription_id: string; holder: string }>(
        "SELECT subscription_id::text, holder FROM work_leases WHERE expires_at > now() ORDER BY subscription_id",
      );
      expect(rows).to.deep.equal([
        { subscription_id: "1", holder: "new-process" },
        { subscription_id: "2", holder: "new-process" },
      ]);
      const other = new Leases(pools[2], "c", KEY_C, 30);
      expect(await other.claimDue({ chainNow: NOW, exclude: [], limit: 100 })).to.deep.equal([3n, 4n]);
    });
  });
});

describe("Leases (PGlite, one keeper)", function () {
  this.timeout(60_000);

  it("claims, renews and releases work on the embedded store", async function () {
    const db = await PgliteDb.open();
    try {
      await migrate(db);
      await seedDue(db, 5);
      const leases = new Leases(db, "only", KEY_A, 30);
      expect(await leases.acquire(SYNC_LEASE)).to.equal(true);
      expect(await leases.claimDue({ chainNow: NOW, exclude: [], limit: 3 })).to.deep.equal([1n, 2n, 3n]);
      expect(await leases.renew([1n, 2n, 3n])).to.have.members([1n, 2n, 3n]);
      await leases.releaseWork([1n, 2n, 3n]);
      expect(await leases.claimDue({ chainNow: NOW, exclude: [4n], limit: 10 })).to.deep.equal([1n, 2n, 3n, 5n]);
    } finally {
      await db.close();
    }
  });
});
