// The keeper's parts (store, RPC client, event sync, tx manager, scheduler) wired as keeper.ts wires them, for unit
// tests that drive each part's steps by hand against an in-process Hardhat chain.
import { pino } from "pino";

import { type ChainEvent, InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import type { Leases } from "../../../keeper/src/leases.js";
import { Quarantine } from "../../../keeper/src/quarantine.js";
import { type Eip1193Provider, RpcClient } from "../../../keeper/src/rpc.js";
import { Scheduler } from "../../../keeper/src/scheduler.js";
import type { PrivateKeySigner } from "../../../keeper/src/signer.js";
import { bindStore, type Db, migrate, PgliteDb } from "../../../keeper/src/store/index.js";
import { EventSync, type EventSyncHooks } from "../../../keeper/src/sync/event-sync.js";
import { TxManager } from "../../../keeper/src/tx-manager.js";

const GWEI = 10n ** 9n;
const silent = pino({ level: "silent" });

/** The billing contract the parts work on. */
export interface PartsTarget {
  billingAddress: string;
  startBlock: number;
}

/** A store (a fresh in-memory PGlite unless `db` is given), migrated and bound to chain 31337 and `billingAddress`. */
export async function openTestStore(billingAddress: string, db?: Db): Promise<Db> {
  const store = db ?? (await PgliteDb.open());
  await migrate(store);
  await bindStore(store, 31337, billingAddress);
  return store;
}

export interface SyncOptions {
  bus?: InProcessEventBus;
  confirmations?: number;
  /** The initial log range in blocks (100 unless given). */
  range?: number;
  hooks?: EventSyncHooks;
}

/** An event sync of chain 31337 from the contract's start block, with the tests' small log ranges. */
export function testEventSync(db: Db, rpc: RpcClient, target: PartsTarget, options: SyncOptions = {}): EventSync {
  return new EventSync(
    db,
    rpc,
    options.bus ?? new InProcessEventBus(),
    {
      chainId: 31337,
      address: target.billingAddress,
      startBlock: target.startBlock,
      confirmations: options.confirmations ?? 0,
      reorgWindow: 64,
      range: { initial: options.range ?? 100, min: 1, max: 1000 },
    },
    silent,
    options.hooks,
  );
}

export interface PartsOptions extends Omit<SyncOptions, "bus" | "hooks"> {
  /** The chain (an EIP-1193 provider: the test network's, or one in front of it that injects faults). */
  provider: Eip1193Provider;
  /** The operator key that signs. */
  signer: PrivateKeySigner;
  db?: Db;
  txConfirmations?: number;
  replaceAfterMs?: number;
  gasBudget?: bigint;
  maxPendingTxs?: number;
  leases?: Leases;
}

export interface KeeperParts {
  db: Db;
  rpc: RpcClient;
  sync: EventSync;
  txManager: TxManager;
  scheduler: Scheduler;
  /** Events the sync retracted (reorged out), in order. */
  retracted: ChainEvent[];
}

/** Every part of one keeper, the scheduler told of final transactions as in keeper.ts. */
export async function keeperParts(target: PartsTarget, options: PartsOptions): Promise<KeeperParts> {
  const db = await openTestStore(target.billingAddress, options.db);
  const rpc = new RpcClient(options.provider);
  const bus = new InProcessEventBus();
  const retracted: ChainEvent[] = [];
  bus.subscribe((event, removed) => removed && retracted.push(event));
  const sync = testEventSync(db, rpc, target, { ...options, bus });
  const late: { scheduler?: Scheduler } = {};
  const txManager = new TxManager(
    db,
    rpc,
    options.signer,
    {
      chainId: 31337,
      maxFeePerGas: 500n * GWEI,
      maxPriorityFeePerGas: 2n * GWEI,
      bumpPercent: 15,
      replaceAfterMs: options.replaceAfterMs ?? 60_000,
      confirmations: options.txConfirmations ?? 1,
    },
    silent,
    { onFinal: (tx, receipt) => late.scheduler?.onFinal(tx, receipt) },
  );
  const scheduler = new Scheduler(
    db,
    rpc,
    txManager,
    {
      billingAddress: target.billingAddress,
      operator: options.signer.address,
      gasBudget: options.gasBudget ?? 8_000_000n,
      maxItems: 200,
      maxPendingTxs: options.maxPendingTxs ?? 4,
      pastDueRetrySeconds: 3600,
      quarantine: new Quarantine(db, { retrySeconds: 3600, maxRetrySeconds: 86_400 }),
      leases: options.leases,
    },
    silent,
  );
  late.scheduler = scheduler;
  return { db, rpc, sync, txManager, scheduler, retracted };
}
