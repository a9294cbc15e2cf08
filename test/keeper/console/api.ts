// The billing console's JSON API over a store filled with known rows, on embedded PGlite and on PostgreSQL: every
// answer checked against the rows, every parameter bounded, bad ones refused with a reason, the token enforced.
import { expect } from "chai";

import { startConsoleServer } from "../../../keeper/src/console/server.js";
import { type Db, migrate, PgliteDb, PostgresDb } from "../../../keeper/src/store/index.js";
import { createTestDatabase } from "../bus/services.js";

const DAY = 86_400;
const NOW = 1_800_000_000; // chain time of the fixture (a Friday in 2027)
const NOW_MS = NOW * 1000;
const TOKEN_A = "0x00000000000000000000000000000000000000aa";
const TOKEN_B = "0x00000000000000000000000000000000000000bb";
const PERIOD = 30 * DAY;
const STATUSES = ["active", "past_due", "cancelled", "lapsed", "completed"];

/** 120 subscriptions (status by id % 5, merchant 1 or 2, token A or B), two charges each for the active ones. */
async function fill(db: Db) {
  await migrate(db);
  for (let id = 1; id <= 120; id += 1) {
    const status = STATUSES[id % 5];
    await db.query(
      `INSERT INTO subscriptions (id, merchant_id, customer, plan_id, token, amount, period, max_charges, status,
         next_charge_at, charge_count, past_due_since) VALUES ($1, $2, $3, 1, $4, $5, $6, 0, $7, $8, 2, $9)`,
      [
        id,
        1 + (id % 2),
        `0x${id.toString(16).padStart(40, "0")}`,
        id % 3 === 0 ? TOKEN_B : TOKEN_A,
        String(10n ** 18n * BigInt(id)),
        PERIOD,
        status,
        NOW + id * 1000, // the first 86 fall due within the next 24 hours
        status === "past_due" ? NOW - 3 * DAY : null,
      ],
    );
    if (status !== "active") continue;
    for (const [index, dueAt] of [NOW - 2 * DAY, NOW].entries()) {
      await db.query(
        `INSERT INTO events (id, block_number, block_hash, tx_hash, log_index, name, subscription_id, merchant_id, args)
         VALUES ($1, $2, '0xb', '0xt', $3, 'Charged', $4, $5, $6)`,
        [
          `c-${id}-${index}`,
          id,
          index,
          id,
          1 + (id % 2),
          JSON.stringify({
            subscriptionId: String(id),
            amount: String(10n ** 18n * BigInt(id)),
            nextChargeAt: String(dueAt + PERIOD),
          }),
        ],
      );
    }
  }
  await db.query(
    `INSERT INTO events (id, block_number, block_hash, tx_hash, log_index, name, subscription_id, merchant_id, args)
     VALUES ('f-2', 2, '0xb', '0xt', 0, 'ChargeFailed', 2, 1, $1)`,
    [JSON.stringify({ subscriptionId: "2", dueAt: String(NOW - DAY) })],
  );
  await db.query(
    `INSERT INTO txs (sender, nonce, state, to_address, data, gas_limit, subscription_ids, created_at_ms, last_sent_at_ms)
     VALUES ('0xop', 7, 'pending', '0xbilling', '0x', 100000, '{1,5,10}', $1, $1)`,
    [NOW_MS - 90_000],
  );
  for (const [index, fee] of ["100", "110", "121"].entries()) {
    await db.query(
      `INSERT INTO tx_attempts (hash, sender, nonce, max_fee_per_gas, max_priority_fee_per_gas, raw, created_at_ms)
       VALUES ($1, '0xop', 7, $2, 1, '0x', $3)`,
      [`0xh${index}`, fee, NOW_MS - 90_000 + index * 1000],
    );
  }
  await db.query(
    "INSERT INTO quarantine (subscription_id, failures, retry_at, reason) VALUES (3, 2, $1, 'simulation reverted')",
    [NOW + 7200],
  );
  await db.query("INSERT INTO sync_cursor (id, block_number, block_hash) VALUES (1, 4242, '0xabc')");
}

async function startConsole(db: Db, token?: string) {
  return startConsoleServer(
    {
      db,
      health: () => ({ ok: false, reasons: ["operator 0xop is not registered"], headLagBlocks: 3 }),
      chainTime: () => NOW,
      nowMs: () => NOW_MS,
      tokenInfo: async (token) => (token === TOKEN_A ? { symbol: "TUSD", decimals: 18 } : undefined),
    },
    { host: "127.0.0.1", port: 0, token },
  );
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: () => JSON.parse(text) as Record<string, unknown>,
  };
}

for (const backend of ["PGlite", "PostgreSQL"] as const) {
  describe(`Billing console API (${backend})`, function () {
    this.timeout(120_000);
    let db: Db;
    let drop: (() => Promise<void>) | undefined;
    let console: Awaited<ReturnType<typeof startConsole>>;

    before(async function () {
      if (backend === "PGlite") {
        db = await PgliteDb.open();
      } else {
        const database = await createTestDatabase();
        drop = database.drop;
        db = await PostgresDb.open(database.url);
      }
      await fill(db);
      console = await startConsole(db);
    });

    after(async function () {
      await console?.close();
      await db?.close();
      await drop?.();
    });

    it("overview: counts by status, sync cursor, health with reasons, quarantine and open transactions", async function () {
      const body = (await get(`${console.url}api/overview`)).json();
      expect(body.subscriptions).to.deep.equal({ active: 24, past_due: 24, cancelled: 24, lapsed: 24, completed: 24 });
      expect(body).to.include({ syncedBlock: 4242, quarantined: 1, openTransactions: 1, chainTime: NOW });
      expect(body.health).to.deep.equal({ ok: false, reasons: ["operator 0xop is not registered"], headLagBlocks: 3 });
    });

    it("pages subscriptions by status in id order with the total", async function () {
      const first = (await get(`${console.url}api/subscriptions?status=past_due&limit=10`)).json();
      expect(first.total).to.equal(24);
      const firstIds = (first.items as Array<{ id: number }>).map((item) => item.id);
      expect(firstIds).to.deep.equal([1, 6, 11, 16, 21, 26, 31, 36, 41, 46]);
      const last = (await get(`${console.url}api/subscriptions?status=past_due&limit=10&offset=20`)).json();
      expect(
        (last.items as Array<{ id: number; pastDueSince: number }>).map((item) => [item.id, item.pastDueSince]),
      ).to.deep.equal([101, 106, 111, 116].map((id) => [id, NOW - 3 * DAY]));
    });

    it("revenue per merchant and token equals the stored charges, formatted when the token is known", async function () {
      const body = (await get(`${console.url}api/revenue`)).json();
      const expected = new Map<string, { charges: number; amount: bigint }>();
      for (let id = 5; id <= 120; id += 5) {
        const key = `${1 + (id % 2)}/${id % 3 === 0 ? TOKEN_B : TOKEN_A}`;
        const entry = expected.get(key) ?? { charges: 0, amount: 0n };
        entry.charges += 2;
        entry.amount += 2n * 10n ** 18n * BigInt(id);
        expected.set(key, entry);
      }
      const items = body.items as Array<{
        merchantId: number;
        token: string;
        charges: number;
        amount: string;
        symbol?: string;
        formatted?: string;
      }>;
      expect(items.map((item) => `${item.merchantId}/${item.token}`)).to.deep.equal([...expected.keys()].sort());
      for (const item of items) {
        const entry = expected.get(`${item.merchantId}/${item.token}`)!;
        expect([item.charges, item.amount]).to.deep.equal([entry.charges, String(entry.amount)]);
        if (item.token === TOKEN_A)
          expect([item.symbol, item.formatted]).to.deep.equal(["TUSD", `${entry.amount / 10n ** 18n}.0`]);
        else expect(item.symbol).to.equal(undefined);
      }
      const lastDay = (await get(`${console.url}api/revenue?days=1`)).json();
      const total = (lastDay.items as Array<{ charges: number }>).reduce((sum, item) => sum + item.charges, 0);
      expect(total).to.equal(24); // only the charges of periods due today
    });

    it("charges and failures per day by due date, a row for every day of the window", async function () {
      const body = (await get(`${console.url}api/charges?days=7`)).json();
      const items = body.items as Array<{ day: number; charged: number; failed: number }>;
      expect(items).to.have.length(7);
      const today = Math.floor(NOW / DAY) * DAY;
      expect(items.at(-1)).to.deep.equal({ day: today, charged: 24, failed: 0 });
      expect(items.at(-2)).to.deep.equal({ day: today - DAY, charged: 0, failed: 1 });
      expect(items.at(-3)).to.deep.equal({ day: today - 2 * DAY, charged: 24, failed: 0 });
      expect(items.slice(0, 4).every((item) => item.charged === 0 && item.failed === 0)).to.equal(true);
    });

    it("due soon: active and past-due subscriptions earliest first, bounded, with the total", async function () {
      const body = (await get(`${console.url}api/due?hours=24&limit=5`)).json();
      const ids = (body.items as Array<{ id: number; status: string }>).map((item) => [item.id, item.status]);
      expect(ids).to.deep.equal([
        [1, "past_due"],
        [5, "active"],
        [6, "past_due"],
        [10, "active"],
        [11, "past_due"],
      ]);
      // next_charge_at = NOW + id * 1000 < NOW + 86,400 for ids 1..86; 2 in 5 of them are active or past due.
      expect(body.total).to.equal([...Array(86).keys()].map((i) => i + 1).filter((id) => id % 5 <= 1).length);
    });

    it("pending transactions with their age, items and fee bumps; quarantined items", async function () {
      const pending = (await get(`${console.url}api/pending`)).json();
      expect(pending.items).to.deep.equal([
        { sender: "0xop", nonce: 7, state: "pending", ageSeconds: 90, items: 3, feeBumps: 2, maxFeePerGas: "121" },
      ]);
      const quarantine = (await get(`${console.url}api/quarantine`)).json();
      expect(quarantine.items).to.deep.equal([
        { id: 3, failures: 2, retryAt: NOW + 7200, reason: "simulation reverted" },
      ]);
    });

    const refusals: Array<[string, number, string]> = [
      ["api/subscriptions?status=past_due&limit=201", 400, "limit must be a whole number from 1 to 200"],
      ["api/subscriptions?status=past_due&limit=-1", 400, "limit must be a whole number from 1 to 200"],
      ["api/subscriptions?status=past_due&offset=1e3", 400, "offset must be a whole number from 0 to 10000000"],
      ["api/subscriptions", 400, "status is required: one of active, past_due, cancelled, lapsed, completed"],
      ["api/subscriptions?status=paused", 400, "status must be one of active, past_due, cancelled, lapsed, completed"],
      ["api/charges?days=0", 400, "days must be a whole number from 1 to 366"],
      ["api/charges?days=100000", 400, "days must be a whole number from 1 to 366"],
      ["api/due?hours=169", 400, "hours must be a whole number from 1 to 168"],
      ["api/pending?limit=1000000", 400, "limit must be a whole number from 1 to 200"],
      ["api/quarantine?order=id", 400, "unknown parameter order"],
      ["api/nothing", 404, "no such endpoint /api/nothing"],
    ];
    for (const [path, status, message] of refusals) {
      it(`refuses ${path} with ${status}: ${message}`, async function () {
        const answer = await get(`${console.url}${path}`);
        expect(answer.status).to.equal(status);
        expect(answer.json()).to.deep.equal({ error: message });
      });
    }
  });
}

describe("Billing console access", function () {
  let db: Db;
  before(async function () {
    db = await PgliteDb.open();
    await fill(db);
  });
  after(async function () {
    await db.close();
  });

  it("with a token: the API needs it (401 otherwise); the page itself holds nothing secret and is served", async function () {
    const console = await startConsole(db, "s3cret-token");
    try {
      expect((await get(`${console.url}api/overview`)).status).to.equal(401);
      const wrong = await get(`${console.url}api/overview`, { authorization: "Bearer s3cret-tokem" });
      expect([wrong.status, wrong.headers.get("www-authenticate")]).to.deep.equal([
        401,
        'Bearer realm="billing console"',
      ]);
      expect((await get(`${console.url}api/overview`, { authorization: "Bearer s3cret-token" })).status).to.equal(200);
      const page = await get(console.url);
      expect(page.status).to.equal(200);
      expect(page.text).to.contain("<title>Billing console</title>");
      expect(page.text).not.to.contain("s3cret");
      expect(page.headers.get("content-security-policy")).to.contain("default-src 'self'");
      const chartLibrary = await get(`${console.url}vendor/uPlot.iife.min.js`);
      expect([chartLibrary.status, chartLibrary.text.includes("uPlot")]).to.deep.equal([200, true]);
    } finally {
      await console.close();
    }
  });

  it("refuses to listen beyond loopback without a token, and answers only GET", async function () {
    let refused: Error | undefined;
    await startConsoleServer(
      { db, health: () => ({ ok: true }), chainTime: () => NOW },
      { host: "0.0.0.0", port: 0 },
    ).catch((error: Error) => (refused = error));
    expect(refused?.message).to.equal(
      "console.host 0.0.0.0 is reachable from other machines: set console.token (or KEEPER_CONSOLE_TOKEN)",
    );
    const console = await startConsole(db);
    try {
      const response = await fetch(`${console.url}api/overview`, { method: "POST" });
      expect([response.status, response.headers.get("allow")]).to.deep.equal([405, "GET"]);
    } finally {
      await console.close();
    }
  });
});
