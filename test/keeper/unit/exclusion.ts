// The due query and the lease claim exclude the keeper's in-flight subscriptions with `NOT IN (SELECT unnest($n))`.
// With a long list (a keeper charging a million subscriptions while the sync trails its dense blocks holds 100,000+
// ids in flight), PostgreSQL plans a plain SubPlan when the list's hash table would not fit work_mem: every scanned
// row is compared with the whole list (spilled to a temp file). On the embedded store's 2MB one due query took 20
// minutes. These tests show the premise on both stores, that `withExclusionMemory` restores the hashed plan, and
// that the scheduler's and the leases' queries return the right rows past a long exclusion list.
import { expect } from "chai";

import { Leases } from "../../../keeper/src/leases.js";
import { dueSubscriptionIds } from "../../../keeper/src/scheduler.js";
import { type Db, migrate, PgliteDb, PostgresDb, withExclusionMemory } from "../../../keeper/src/store/index.js";
import { createTestDatabase, requirePostgres } from "../bus/services.js";
import { withQueryHook } from "../support/query-hook.js";

const NOW = 1_000_000n;
/** Past the embedded store's threshold (~110,000 ids at 2MB) and PostgreSQL's default one (4MB). */
const IN_FLIGHT = 300_000;
/** Due subscriptions: the first EXCLUDED of them are in flight. */
const DUE = 3_000;
const EXCLUDED = 2_000;

/** `DUE` active subscriptions due at NOW (ids 1..DUE), and an in-flight list holding ids 1..EXCLUDED among others. */
async function seed(db: Db): Promise<string[]> {
  await migrate(db);
  await db.query(
    `INSERT INTO subscriptions (id, merchant_id, customer, plan_id, token, amount, period, max_charges, status,
       next_charge_at, charge_count)
     SELECT i, 1, '0xc', 1, '0xt', 10, 2592000, 0, 'active', $2, 1 FROM generate_series(1, $1) AS i`,
    [DUE, NOW.toString()],
  );
  await db.query("ANALYZE subscriptions");
  // Ids 1..EXCLUDED, then ids the store does not hold (other keepers' or already charged ones).
  return Array.from({ length: IN_FLIGHT }, (_, i) => String(i < EXCLUDED ? i + 1 : DUE + i));
}

/** The plan's filter on an exclusion list: "(NOT (hashed SubPlan 1))" (PostgreSQL 15), "(NOT (ANY (id = ...". */
async function exclusionFilter(db: Db, sql: string, params: unknown[]): Promise<string> {
  const rows = await db.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`, params);
  const lines = rows.map((row) => row["QUERY PLAN"]);
  return lines.find((line) => line.includes("Filter") && line.includes("SubPlan")) ?? lines.join("\n");
}

const exclusionPlan = (db: Db, inFlight: string[]) =>
  exclusionFilter(
    db,
    `SELECT s.id FROM subscriptions s WHERE s.next_charge_at <= $1
       AND s.id NOT IN (SELECT unnest($2::text[]::bigint[])) ORDER BY s.next_charge_at, s.id LIMIT 10`,
    [NOW.toString(), inFlight],
  );

/** `db`, recording the plan's filter of every statement with an exclusion list it runs (in the same transaction). */
const recordingPlans = (db: Db, filters: string[]): Db =>
  withQueryHook(db, async (sql, params, on) => {
    if (sql.includes("NOT IN (SELECT unnest(")) filters.push(await exclusionFilter(on, sql, params ?? []));
  });

function exclusionTests(open: () => Promise<{ db: Db; close: () => Promise<void> }>) {
  let db: Db;
  let close: () => Promise<void>;
  let inFlight: string[];

  before(async function () {
    ({ db, close } = await open());
    inFlight = await seed(db);
  });

  after(async function () {
    await close?.();
  });

  it("plans a plain SubPlan for a long list with the store's work_mem, a hashed one within withExclusionMemory", async function () {
    const plain = await exclusionPlan(db, inFlight);
    expect(plain).to.include("SubPlan 1").and.not.include("hashed");
    const hashed = await withExclusionMemory(db, inFlight.length, (tx) => exclusionPlan(tx, inFlight));
    expect(hashed).to.include("hashed SubPlan 1");
  });

  it("finds the due subscriptions past a long in-flight list, hashing the list", async function () {
    const filters: string[] = [];
    const ids = await dueSubscriptionIds(recordingPlans(db, filters), NOW, inFlight, 10);
    expect(ids).to.deep.equal(Array.from({ length: 10 }, (_, i) => BigInt(EXCLUDED + 1 + i)));
    expect(filters).to.have.length(1);
    expect(filters[0]).to.include("hashed SubPlan");
  });

  it("claims the due subscriptions past a long exclusion list, hashing the list", async function () {
    const filters: string[] = [];
    const leases = new Leases(recordingPlans(db, filters), "a", "0x000000000000000000000000000000000000000a", 30);
    const claimed = await leases.claimDue({ chainNow: NOW, exclude: inFlight.map(BigInt), limit: 10 });
    expect(claimed).to.deep.equal(Array.from({ length: 10 }, (_, i) => BigInt(EXCLUDED + 1 + i)));
    // The lease rows it creates and the claim itself.
    expect(filters).to.have.length(2);
    for (const filter of filters) expect(filter).to.include("hashed SubPlan");
  });
}

describe("Exclusion lists of in-flight subscriptions", function () {
  this.timeout(120_000);

  describe("embedded store (PGlite, 2MB work_mem)", function () {
    exclusionTests(async () => {
      const db = await PgliteDb.open();
      return { db, close: () => db.close() };
    });
  });

  describe("PostgreSQL server", function () {
    exclusionTests(async () => {
      await requirePostgres();
      const database = await createTestDatabase();
      const db = await PostgresDb.open(database.url);
      return {
        db,
        close: async () => {
          await db.close();
          await database.drop();
        },
      };
    });
  });
});
