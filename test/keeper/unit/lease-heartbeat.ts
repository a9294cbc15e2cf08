// The lease heartbeat: a keeper on a shared PostgreSQL store whose loop pass hangs (a stalled RPC call, here between
// claiming subscriptions and sending them) for several lease TTLs keeps its sync lease and its claims, so another
// instance can take neither; once the keeper stops, nothing renews them and the other instance takes them.
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";
import { pino } from "pino";

import { InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import { parseConfig } from "../../../keeper/src/config.js";
import { Keeper } from "../../../keeper/src/keeper.js";
import { Leases, SYNC_LEASE } from "../../../keeper/src/leases.js";
import type { Eip1193Provider } from "../../../keeper/src/rpc.js";
import { PrivateKeySigner } from "../../../keeper/src/signer.js";
import { PostgresDb } from "../../../keeper/src/store/index.js";
import { billingInterface } from "../../../keeper/src/sync/decode.js";
import { createTestDatabase, requirePostgres, waitUntil } from "../bus/services.js";
import { deployThreeSubscriptions, PERIOD } from "../support/three-subscriptions.js";

const { ethers, networkHelpers, provider } = await network.create();
const TTL_SECONDS = 2;
const OTHER_KEY = "0x000000000000000000000000000000000000000b";
/** Later than any due time: the other instance claims whatever the store says is due and unclaimed. */
const FAR_FUTURE = 2n ** 60n;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Three subscriptions of one plan, due again (a period later) when this returns. */
async function deployDue(operator: string) {
  const { billingAddress, startBlock } = await deployThreeSubscriptions({ ethers, networkHelpers }, operator);
  await networkHelpers.time.increase(PERIOD);
  return { billingAddress, startBlock };
}

/** The chain, except that the scheduler's `areDue` check hangs once armed, until `release` (then it fails). */
function stallingProvider() {
  const selector = billingInterface.getFunction("areDue")?.selector as string;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const stalled = new Promise<void>((resolve) => (reached = resolve));
  const gated: Eip1193Provider = {
    request: async ({ method, params }) => {
      const [call] = (params ?? []) as { data?: string }[];
      if (method === "eth_call" && call?.data?.startsWith(selector)) {
        reached();
        await released;
        throw new Error("injected: the node stopped answering");
      }
      return provider.request({ method, params: params as unknown[] });
    },
  };
  return { gated, stalled, release };
}

/** A keeper (instance "blocked", 2 s leases) whose first pass hangs, once it claimed the due subscriptions. */
async function blockedKeeper(db: PostgresDb) {
  const operator = new PrivateKeySigner(Wallet.createRandom().privateKey);
  const { billingAddress, startBlock } = await deployDue(operator.address);
  const { gated, stalled, release } = stallingProvider();
  const config = parseConfig({
    chainId: 31337,
    billingAddress,
    startBlock,
    confirmations: 0,
    pollIntervalMs: 50,
    signer: { type: "env", variable: "UNUSED_KEEPER_KEY" },
    metrics: { port: 0 },
    logLevel: "silent",
    instanceId: "blocked",
    leases: { ttlSeconds: TTL_SECONDS },
  });
  const keeper = new Keeper({
    config,
    signer: operator,
    provider: gated,
    db,
    bus: new InProcessEventBus(),
    logger: pino({ level: "silent" }),
  });
  return { keeper, operator, stalled, release };
}

describe("Lease heartbeat (PostgreSQL server)", function () {
  this.timeout(60_000);
  let database: { url: string; drop: () => Promise<void> };
  let pools: PostgresDb[] = [];
  /** Another keeper instance with its own key, on its own connection pool. */
  let other: Leases;
  const claimable = () => other.claimDue({ chainNow: FAR_FUTURE, exclude: [], limit: 100 });

  before(async function () {
    await requirePostgres();
  });

  // A database per test: each binds the store to its own billing contract.
  beforeEach(async function () {
    database = await createTestDatabase();
    pools = await Promise.all([1, 2].map(() => PostgresDb.open(database.url)));
    other = new Leases(pools[1], "other", OTHER_KEY, TTL_SECONDS);
  });

  afterEach(async function () {
    await Promise.all(pools.map((pool) => pool.close()));
    await database?.drop();
  });

  it("keeps the leases of a pass blocked for several TTLs, and lets them go after stop()", async function () {
    const { keeper, operator, stalled, release } = await blockedKeeper(pools[0]);
    let stopping: Promise<void> | undefined;
    try {
      await keeper.start();
      // The pass acquired the sync lease, synced, claimed the three due subscriptions and hangs before sending.
      await stalled;
      const claimed = await pools[0].query("SELECT 1 FROM work_leases WHERE holder = 'blocked' AND expires_at > now()");
      expect(claimed).to.have.length(3);

      const blockedUntil = Date.now() + 4 * TTL_SECONDS * 1000;
      while (Date.now() < blockedUntil) {
        expect(await other.acquire(SYNC_LEASE), "sync lease taken from the blocked leader").to.equal(false);
        expect(await claimable(), "claims taken from the blocked keeper").to.deep.equal([]);
        await sleep(250);
      }
      expect((await keeper.metrics.leaseHeartbeatFailures.get()).values[0]?.value ?? 0).to.equal(0);

      // The stall ends in an error: the pass releases its claims; the stop hands the sync lease over.
      stopping = keeper.stop();
      release();
      await stopping;
      expect(await other.acquire(SYNC_LEASE)).to.equal(true);
      expect((await claimable()).map(Number)).to.have.members([1, 2, 3]);
      // Nothing renews this keeper's leases any more.
      await sleep(TTL_SECONDS * 1000);
      const live = await pools[0].query(
        `SELECT 1 FROM work_leases WHERE sender = $1 AND expires_at > now()
         UNION ALL SELECT 1 FROM leases WHERE holder = 'blocked' AND expires_at > now()`,
        [operator.address.toLowerCase()],
      );
      expect(live).to.deep.equal([]);
    } finally {
      release();
      await (stopping ?? keeper.stop());
    }
  });

  it("makes the keeper a follower when it finds the sync lease taken", async function () {
    const { keeper, stalled, release } = await blockedKeeper(pools[0]);
    try {
      await keeper.start();
      await stalled;
      expect((await keeper.metrics.syncLeader.get()).values[0]?.value).to.equal(1);
      // As if the lease had lapsed (a store outage longer than the TTL) and another instance had taken it.
      await pools[1].query("UPDATE leases SET expires_at = now() WHERE name = $1", [SYNC_LEASE]);
      expect(await other.acquire(SYNC_LEASE)).to.equal(true);
      await waitUntil(
        "the heartbeat notices the lost sync lease",
        async () => (await keeper.metrics.syncLeader.get()).values[0]?.value === 0,
        TTL_SECONDS * 1000,
      );
      expect(await other.acquire(SYNC_LEASE), "the heartbeat does not take the lease back").to.equal(true);
    } finally {
      const stopping = keeper.stop();
      release();
      await stopping;
    }
  });
});
