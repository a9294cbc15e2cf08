import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import {
  bindStore,
  migrate,
  MIGRATIONS,
  initPgliteDir,
  PGLITE_SETTINGS,
  PgliteDb,
  PostgresDb,
  StoreMismatchError,
} from "../../../keeper/src/store/index.js";

describe("Keeper store (PGlite)", function () {
  this.timeout(60_000);
  let db: PgliteDb;

  beforeEach(async function () {
    db = await PgliteDb.open();
  });

  afterEach(async function () {
    await db.close();
  });

  describe("migrate", function () {
    it("applies each migration once and records it", async function () {
      expect(await migrate(db)).to.deep.equal(MIGRATIONS.map((m) => m.version));
      expect(await migrate(db)).to.deep.equal([]);
      const rows = await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
      expect(rows.map((r) => r.version)).to.deep.equal(MIGRATIONS.map((m) => m.version));
    });

    it("applies a later migration to an existing store", async function () {
      await migrate(db);
      const next = { version: 1000, name: "test column", sql: "ALTER TABLE meta ADD COLUMN note text" };
      expect(await migrate(db, [...MIGRATIONS, next])).to.deep.equal([1000]);
    });

    it("leaves nothing behind when a migration fails", async function () {
      const broken = { version: 1, name: "broken", sql: "CREATE TABLE a (x int); CREATE TABLE a (x int)" };
      await migrate(db, [broken]).catch(() => {});
      expect(await db.query("SELECT 1 FROM pg_tables WHERE tablename = 'a'")).to.deep.equal([]);
      expect(await db.query("SELECT 1 FROM schema_migrations")).to.deep.equal([]);
    });
  });

  describe("transaction", function () {
    it("rolls back every statement when the callback throws", async function () {
      await migrate(db);
      await db
        .transaction(async (tx) => {
          await tx.query("INSERT INTO meta (key, value) VALUES ('a', '1')");
          throw new Error("boom");
        })
        .catch(() => {});
      expect(await db.query("SELECT * FROM meta")).to.deep.equal([]);
    });
  });

  describe("open on a data directory", function () {
    it("creates the directory in a child process, then opens it with the small-memory settings", async function () {
      const dir = mkdtempSync(path.join(tmpdir(), "keeper-store-"));
      const dataDir = path.join(dir, "data");
      try {
        await initPgliteDir(dataDir);
        expect(existsSync(path.join(dataDir, "PG_VERSION"))).to.equal(true);
        const opened = await PgliteDb.open(dataDir);
        try {
          const [{ shared_buffers }] = await opened.query<{ shared_buffers: string }>("SHOW shared_buffers");
          const [{ work_mem }] = await opened.query<{ work_mem: string }>("SHOW work_mem");
          const [{ max_connections }] = await opened.query<{ max_connections: string }>("SHOW max_connections");
          expect({ shared_buffers, work_mem, max_connections }).to.deep.equal(PGLITE_SETTINGS);
          await migrate(opened);
        } finally {
          await opened.close();
        }
        // Reopened: the schema is there (the child's initdb ran once, nothing re-initialized it).
        const again = await PgliteDb.open(dataDir);
        expect(await migrate(again)).to.deep.equal([]);
        await again.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("bindStore", function () {
    it("refuses a store made for another chain or contract", async function () {
      await migrate(db);
      await bindStore(db, 31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
      await bindStore(db, 31337, "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0");
      const error = await bindStore(db, 1, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0").catch((e: Error) => e);
      expect(error).to.be.instanceOf(StoreMismatchError);
      expect((error as Error).message).to.match(/store holds data for chainId 31337, but the config says 1/);
    });
  });
});

describe("Keeper store (PostgreSQL server)", function () {
  this.timeout(60_000);
  const adminUrl = process.env.KEEPER_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const database = `keeper_test_${process.pid}_${Date.now()}`;
  let admin: PostgresDb;
  let db: PostgresDb;

  before(async function () {
    admin = await PostgresDb.open(adminUrl);
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(adminUrl);
    url.pathname = `/${database}`;
    db = await PostgresDb.open(url.toString());
  });

  after(async function () {
    await db?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin?.close();
  });

  it("runs the same migrations and transactions as PGlite", async function () {
    expect(await migrate(db)).to.deep.equal(MIGRATIONS.map((m) => m.version));
    expect(await migrate(db)).to.deep.equal([]);
    await db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO meta (key, value) VALUES ('a', '1')");
        throw new Error("boom");
      })
      .catch(() => {});
    expect(await db.query("SELECT * FROM meta")).to.deep.equal([]);
    await bindStore(db, 31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
    expect(await db.query("SELECT key FROM meta ORDER BY key")).to.deep.equal([
      { key: "billingAddress" },
      { key: "chainId" },
    ]);
  });
});
