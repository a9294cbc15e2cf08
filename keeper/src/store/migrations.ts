// Numbered schema migrations, applied in order inside transactions and recorded in `schema_migrations`, so a store
// created by an older keeper is upgraded in place and a migration never runs twice.
import type { Db } from "./db.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sql: `
      -- What chain and contract this store belongs to: a keeper refuses a store made for another.
      CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
      -- Last block whose events are stored; advanced in the same transaction that stores them.
      CREATE TABLE sync_cursor (
        id int PRIMARY KEY CHECK (id = 1),
        block_number bigint NOT NULL,
        block_hash text
      );
      -- Recent block hashes, to find the common ancestor after a reorg.
      CREATE TABLE blocks (number bigint PRIMARY KEY, hash text NOT NULL, parent_hash text NOT NULL);
      CREATE TABLE events (
        id text PRIMARY KEY,
        block_number bigint NOT NULL,
        block_hash text NOT NULL,
        tx_hash text NOT NULL,
        log_index int NOT NULL,
        name text NOT NULL,
        subscription_id bigint,
        merchant_id bigint,
        args jsonb NOT NULL
      );
      CREATE INDEX events_block ON events (block_number);
      CREATE INDEX events_subscription ON events (subscription_id, block_number, log_index);
      CREATE INDEX events_merchant ON events (merchant_id, block_number, log_index) WHERE name = 'MerchantPauseSet';
      -- Derived from events: rebuilt for the affected ids after a reorg.
      CREATE TABLE subscriptions (
        id bigint PRIMARY KEY,
        merchant_id bigint NOT NULL,
        customer text NOT NULL,
        plan_id bigint NOT NULL,
        token text NOT NULL,
        amount numeric NOT NULL,
        period bigint NOT NULL,
        max_charges bigint NOT NULL,
        status text NOT NULL,
        next_charge_at bigint NOT NULL,
        charge_count bigint NOT NULL,
        past_due_since bigint,
        -- Scheduler back-off (chain time), not derived from events.
        retry_at bigint NOT NULL DEFAULT 0
      );
      CREATE INDEX subscriptions_due ON subscriptions (next_charge_at, id) WHERE status IN ('active', 'past_due');
      CREATE TABLE merchants (id bigint PRIMARY KEY, paused boolean NOT NULL);
      -- Every transaction the keeper signed, one row per (sender, nonce): each operator key has its own nonces.
      CREATE TABLE txs (
        sender text NOT NULL,
        nonce bigint NOT NULL,
        state text NOT NULL,
        to_address text NOT NULL,
        data text NOT NULL,
        gas_limit numeric NOT NULL,
        subscription_ids bigint[] NOT NULL,
        created_at_ms bigint NOT NULL,
        last_sent_at_ms bigint NOT NULL,
        mined_hash text,
        block_number bigint,
        block_hash text,
        receipt_status int,
        note text,
        PRIMARY KEY (sender, nonce)
      );
      CREATE INDEX txs_open ON txs (sender, state) WHERE state IN ('pending', 'mined');
      -- Every signed version of a transaction (the original and each fee-bumped replacement).
      CREATE TABLE tx_attempts (
        hash text PRIMARY KEY,
        sender text NOT NULL,
        nonce bigint NOT NULL,
        max_fee_per_gas numeric NOT NULL,
        max_priority_fee_per_gas numeric NOT NULL,
        raw text NOT NULL,
        created_at_ms bigint NOT NULL,
        FOREIGN KEY (sender, nonce) REFERENCES txs (sender, nonce)
      );
      CREATE INDEX tx_attempts_nonce ON tx_attempts (sender, nonce, created_at_ms);
    `,
  },
  {
    version: 2,
    name: "leases for several keeper instances",
    sql: `
      -- Named leases held by one keeper instance until expires_at (database time, so instances' clocks do not
      -- matter): 'sync' is the event sync leader. sender is the holder's operator key: a restarted keeper with the
      -- same key takes its leases back at once instead of waiting for them to expire.
      CREATE TABLE leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        sender text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      -- Subscriptions an instance claimed to charge, so instances send disjoint batches. Kept while the charge is in
      -- flight (renewed each loop), released when its transaction is final; a dead instance's claims expire.
      -- A table of its own: subscriptions rows are rebuilt from events after a reorg.
      CREATE TABLE work_leases (
        subscription_id bigint PRIMARY KEY,
        holder text NOT NULL,
        sender text NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX work_leases_sender ON work_leases (sender)
    `,
  },
  {
    version: 3,
    name: "reorg count for bus sequence numbers",
    sql: `
      -- Reorg rollbacks committed so far, incremented in each rollback's transaction: the bus derives each
      -- publication's sequence from it (bus/messages.ts), so a block that is reorged out and comes back is
      -- published again with a higher sequence, and a re-send after a crash with the same one.
      ALTER TABLE sync_cursor ADD COLUMN reorgs bigint NOT NULL DEFAULT 0
    `,
  },
  {
    version: 4,
    name: "transactional outbox for the event bus",
    sql: `
      -- What the bus still has to get, written in the transaction that stores the events (kind 'event') or deletes
      -- them in a rollback (kind 'removed'), so the bus follows exactly what the store committed. Published in id
      -- order and deleted once the bus confirmed them (bus/outbox.ts). Only the sync-lease holder writes, fenced in
      -- each transaction before its first insert, so ids are allocated in commit order and the publisher never reads
      -- past a row that commits later.
      CREATE TABLE bus_outbox (
        id bigserial PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('event', 'removed')),
        sequence bigint NOT NULL CHECK (sequence >= 0),
        event jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )
    `,
  },
  {
    version: 5,
    name: "contracts v2: subscription refs, backlog and quarantine",
    sql: `
      -- A v2 charge addresses a subscription by (id, customer, amount, token), all already stored; the backlog a
      -- charge may collect (older periods are forgiven) is a term copied into the subscription.
      ALTER TABLE subscriptions ADD COLUMN max_backlog bigint NOT NULL DEFAULT 1;
      -- Subscriptions whose charge cannot be simulated (a hostile token, a node refusing the call): left out of
      -- batches until retry_at (chain time), with a back-off doubling per failure. A table of its own, so neither a
      -- restart nor a reorg's rebuild of the subscriptions rows forgets it.
      CREATE TABLE quarantine (
        subscription_id bigint PRIMARY KEY,
        failures int NOT NULL CHECK (failures >= 1),
        retry_at bigint NOT NULL,
        reason text NOT NULL,
        quarantined_at timestamptz NOT NULL DEFAULT now()
      )
    `,
  },
];

/** Applies every migration newer than the store's version; returns the versions applied. */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  // Under the same lock as the migrations: PostgreSQL's IF NOT EXISTS is not safe against a concurrent CREATE (two
  // keepers starting at once on a new database fail with a duplicate pg_type key).
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(727272)");
    await tx.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
  });
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    const done = await db.transaction(async (tx) => {
      // Serializes keepers migrating the same PostgreSQL database at once.
      await tx.query("SELECT pg_advisory_xact_lock(727272)");
      const rows = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [migration.version]);
      if (rows.length > 0) return false;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}

/** Splits a migration into statements (extended-protocol queries take one statement each). */
function splitStatements(sql: string): string[] {
  return sql
    .split("\n")
    .filter((line) => !line.trim().startsWith("--"))
    .join("\n")
    .split(";")
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}
