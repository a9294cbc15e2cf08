// Wires the keeper: RPC, store, event sync, tx manager and scheduler in one sequential loop (so no two parts ever
// race on the store or the nonce), plus metrics, health and a graceful stop. The one thing beside the loop is the bus
// outbox publisher's retry while the bus is down, which touches nothing but the `bus_outbox` rows.
import { chmodSync, mkdirSync } from "node:fs";
import { getHeapStatistics } from "node:v8";

import { pino, type Logger } from "pino";

import { createEventBus, type EventBus } from "./bus/index.js";
import { ChainResetError, checkChainIdentity, isAutomining, startOverHint } from "./chain-identity.js";
import { statusReport } from "./cli/status-report.js";
import { ConfigError, describeConfig, type KeeperConfig, rpcUrls } from "./config.js";
import { cachedFor, TokenNames } from "./console/sources.js";
import { startConsoleServer } from "./console/server.js";
import { evaluateHealth, HEALTH_REASONS } from "./health.js";
import { LeaseLostError, Leases, SYNC_LEASE } from "./leases.js";
import { type Health, KeeperMetrics, startMetricsServer } from "./metrics.js";
import { Quarantine } from "./quarantine.js";
import { classifyRpcError, type Eip1193Provider, redactUrl, RpcClient } from "./rpc.js";
import { Scheduler } from "./scheduler.js";
import type { OperatorSigner } from "./signer.js";
import { bindStore, type Db, migrate, openDb, PostgresDb } from "./store/index.js";
import { lockStore, type StoreLock } from "./store/lock.js";
import { restrictTree } from "./store/permissions.js";
import { billingInterface } from "./sync/decode.js";
import { SubscriptionCountCheck } from "./sync/count-check.js";
import { EventSync } from "./sync/event-sync.js";
import { TxManager } from "./tx-manager.js";

const GWEI = 1_000_000_000;
/** Ranges synced per loop iteration before the tx manager and scheduler get a turn (while far behind). */
const SYNC_STEPS_PER_ITERATION = 20;
/**
 * How far (blocks) the sync may trail the confirmed head while the scheduler still sends charges, one range per
 * pass. A keeper filling blocks makes them dense with its own Charged events, and the sync then trails by a block or
 * two for as long as it charges; waiting for it to catch up would leave blocks empty. Nothing is charged twice: its
 * own transactions stay excluded until the sync has passed their block, and `areDue` confirms every candidate on
 * chain. Until the sync has caught up once since the start, and beyond this distance (a long outage), the store is
 * too old to pick from and the sync comes first.
 */
const SCHEDULE_WITHIN_BLOCKS = 64;
const MAX_BACKOFF_MS = 10_000;
/** How long a graceful stop waits for the outbox batch in flight before it closes the bus (the batch is re-sent). */
const OUTBOX_STOP_GRACE_MS = 5_000;
/** How often a running keeper checks that the node still serves the chain its store was built from. */
const CHAIN_IDENTITY_CHECK_MS = 10_000;
/** Dev chain ids, the only ones asked whether they automine (other nodes would count an unknown-method error). */
const DEV_CHAIN_IDS = new Set([31337, 1337]);

export interface KeeperDeps {
  config: KeeperConfig;
  signer: OperatorSigner;
  /** An in-process chain (tests, the Hardhat task); otherwise `config.rpcUrl` is used. */
  provider?: Eip1193Provider;
  bus?: EventBus;
  logger?: Logger;
  /** A store to use instead of the configured one (tests). */
  db?: Db;
}

/** A pino logger writing JSON lines to stdout synchronously (nothing lost on exit); keys are never logged. */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { name: "keeper" },
      redact: { paths: ["privateKey", "password", "*.privateKey", "*.password", "raw", "*.raw"], censor: "[redacted]" },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

/** Waits for `promise`, at most `ms`. */
async function withTimeout(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Runs `fn` every `ms` until stopped: each run starts `ms` after the previous one ended, so runs never overlap. `fn`
 * must not throw. The timer does not hold the process open; `stop` waits for the run in progress.
 */
function every(ms: number, fn: () => Promise<void>): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    timer = setTimeout(() => {
      running = fn().finally(() => {
        running = undefined;
        if (!stopped) schedule();
      });
    }, ms).unref();
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export class Keeper {
  readonly metrics = new KeeperMetrics();
  readonly logger: Logger;
  readonly rpc: RpcClient;
  private readonly config: KeeperConfig;
  private readonly signer: OperatorSigner;
  private readonly stopController = new AbortController();
  private db?: Db;
  private busInstance?: EventBus;
  private leases?: Leases;
  /** Renews the leases between loop passes (shared store only), so a long pass does not let them lapse. */
  private leaseHeartbeat?: { stop(): Promise<void> };
  /** Several instances share the store (PostgreSQL): only the holder of the sync lease syncs and publishes. */
  private shared = false;
  private syncLeader?: boolean;
  private sync?: EventSync;
  private txManager?: TxManager;
  private scheduler?: Scheduler;
  private metricsServer?: { url: string; close(): Promise<void> };
  private consoleServer?: { url: string; close(): Promise<void> };
  private countCheck?: SubscriptionCountCheck;
  private loop?: Promise<void>;
  private lastSuccessAt = 0;
  private lastError?: string;
  private phase: "starting" | "running" | "stopping" | "stopped" = "starting";
  private balanceLow = false;
  private registered?: boolean;
  private storeLock?: StoreLock;
  private identityCheck?: { stop(): Promise<void> };
  /** Checks the chain's genesis now (on a timer, and on a reorg: a restarted node looks like one at first). */
  private checkIdentity?: () => Promise<void>;
  private balanceWei?: bigint;
  private nextBatchCostWei?: bigint;
  /** Whether the sync has reached the confirmed head since the start (the store then holds the whole history). */
  private caughtUpOnce = false;
  /** Caught up once, and the last sync pass ended within {@link SCHEDULE_WITHIN_BLOCKS} of the confirmed head. */
  private nearHead = false;
  /** Blocks the sync trails the head by, beyond the confirmations it waits for on purpose. */
  private syncLag?: number;
  private oldestPendingSeconds?: number;
  private haltWith?: (err: Error) => void;
  /** Settles with the error that stopped the keeper on its own (a chain reset): the process should exit. */
  readonly halted = new Promise<Error>((resolve) => (this.haltWith = resolve));

  constructor(private readonly deps: KeeperDeps) {
    this.config = deps.config;
    this.signer = deps.signer;
    this.logger = deps.logger ?? createLogger(deps.config.logLevel);
    this.busInstance = deps.bus;
    this.rpc = new RpcClient(deps.provider ?? rpcUrls(deps.config), {
      timeoutMs: deps.config.rpcTimeoutMs,
      maxRetryAfterMs: deps.config.rpc.maxRetryAfterMs,
      maxLagBlocks: deps.config.rpc.maxLagBlocks,
      onError: (method, kind) => this.metrics.rpcErrors.inc({ method, kind }),
      onRequest: (endpoint, _method, latencyMs, kind) => {
        this.metrics.rpcRequests.inc({ endpoint, outcome: kind ?? "ok" });
        if (kind === undefined) this.metrics.rpcEndpointLatency.set({ endpoint }, latencyMs / 1000);
      },
    });
  }

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  /** The event bus (once started, unless one was given). */
  get bus(): EventBus | undefined {
    return this.busInstance;
  }

  /** URL of the metrics server once started. */
  get metricsUrl(): string | undefined {
    return this.metricsServer?.url;
  }

  /**
   * Starts the metrics server, waits for the RPC, checks the chain and contract, opens the store, resumes pending
   * transactions and starts the loop. Throws a {@link ConfigError} when the chain or contract is not the one
   * configured.
   */
  async start(): Promise<void> {
    const { config } = this;
    // First, before anything listens or writes: a second keeper on this store must stop here (exit 2).
    if (this.deps.db === undefined) this.storeLock = await lockStore(config.store, config.instanceId);
    this.metricsServer = await startMetricsServer(
      this.metrics,
      () => this.health(),
      config.metrics.host,
      config.metrics.port,
      () => ({ ok: this.phase === "running", phase: this.phase }),
      async () => {
        if (this.db === undefined || this.phase !== "running") throw new Error(`keeper is ${this.phase}`);
        return statusReport(this.db, await this.rpc.blockNumber());
      },
    );
    this.logger.info(
      {
        metricsUrl: this.metricsServer.url,
        operator: this.signer.address,
        // What V8 lets the heap grow to (NODE_OPTIONS in the systemd unit and the Dockerfile: keeper/src/node-flags.ts).
        heapLimitMiB: Math.round(getHeapStatistics().heap_size_limit / 1048576),
        rpc: this.deps.provider ? "in-process provider" : rpcUrls(config).map(redactUrl),
        ...describeConfig(config),
      },
      "keeper started",
    );
    await this.connect();
    if (this.stopped) return;
    await this.retrying("connect", () => this.rpc.blockNumber());
    this.updateEndpointMetrics();
    this.logger.info({ endpoints: this.rpc.pool.stats() }, `rpc endpoints: ${this.rpc.statusLine()}`);

    if (this.deps.db === undefined && "dataDir" in config.store) {
      // The store holds the keeper's whole history: owner-only, whatever the umask was when it was created.
      mkdirSync(config.store.dataDir, { recursive: true, mode: 0o700 });
      chmodSync(config.store.dataDir, 0o700);
    }
    this.db = this.deps.db ?? (await openDb(config.store));
    if (this.deps.db === undefined && "dataDir" in config.store) restrictTree(config.store.dataDir);
    const applied = await migrate(this.db);
    if (applied.length > 0) this.logger.info({ migrations: applied }, "store migrated");
    await bindStore(this.db, config.chainId, config.billingAddress);
    const dataHint = startOverHint(this.deps.db === undefined ? config.store : undefined);
    await checkChainIdentity(this.db, this.rpc, dataHint);
    const db = this.db;
    this.checkIdentity = async () => {
      try {
        await checkChainIdentity(db, this.rpc, dataHint);
      } catch (err) {
        if (err instanceof ChainResetError) this.halt(err);
        // An RPC hiccup is the loop's to report.
      }
    };
    this.identityCheck = every(CHAIN_IDENTITY_CHECK_MS, this.checkIdentity);
    await this.hintAutomine();
    await this.startConsole(db);
    this.shared = this.db instanceof PostgresDb;
    const leases = new Leases(this.db, config.instanceId, this.signer.address.toLowerCase(), config.leases.ttlSeconds);
    this.leases = leases;
    // Claims a previous process with this key left behind: kept for its transactions in flight, dropped otherwise.
    await leases.renewInFlight({ dropIdle: true });
    if (this.shared) this.leaseHeartbeat = every((config.leases.ttlSeconds * 1000) / 3, () => this.renewLeases());

    if (this.busInstance === undefined) {
      const bus = await this.retrying("event bus", () =>
        createEventBus(config.bus, this.logger.child({ component: "bus" })),
      );
      if (bus === undefined) return;
      this.busInstance = bus;
    }

    this.countCheck = new SubscriptionCountCheck(this.db, this.rpc, config.billingAddress, this.logger, (check) =>
      this.metrics.subscriptionGap.set(check.onChain - check.stored),
    );
    this.sync = new EventSync(
      this.db,
      this.rpc,
      this.busInstance,
      {
        chainId: config.chainId,
        address: config.billingAddress,
        startBlock: config.startBlock,
        confirmations: config.confirmations,
        reorgWindow: config.reorgWindowBlocks,
        range: config.logRange,
      },
      this.logger,
      {
        onEvents: (count) => this.metrics.eventsSynced.inc(count),
        onReorg: () => {
          this.metrics.reorgs.inc();
          void this.checkIdentity?.();
        },
        onProgress: (cursor, head) => {
          this.metrics.syncedBlock.set(cursor);
          this.metrics.headLag.set(Math.max(0, head - cursor));
          this.syncLag = Math.max(0, head - cursor - config.confirmations);
        },
        beforeCommit: this.shared ? (tx) => leases.fence(tx, SYNC_LEASE) : undefined,
        onOutboxDepth: (depth) => this.metrics.busOutboxDepth.set(depth),
        onInconsistentLogs: () => this.metrics.inconsistentLogs.inc(),
        onReorgSuspicion: (confirmed) => this.metrics.reorgSuspicions.inc({ confirmed: String(confirmed) }),
      },
    );
    this.txManager = new TxManager(
      this.db,
      this.rpc,
      this.signer,
      {
        chainId: config.chainId,
        maxFeePerGas: BigInt(Math.round(config.fees.maxFeePerGasGwei * GWEI)),
        maxPriorityFeePerGas: BigInt(Math.round(config.fees.maxPriorityFeePerGasGwei * GWEI)),
        bumpPercent: config.fees.bumpPercent,
        replaceAfterMs: config.fees.replaceAfterMs,
        confirmations: config.txConfirmations,
      },
      this.logger,
      {
        onSent: (tx) => this.metrics.chargesSent.inc(tx.subscriptionIds.length),
        onReplaced: () => this.metrics.replacements.inc(),
        onFinal: (tx, receipt) => this.scheduler?.onFinal(tx, receipt),
        onPending: (count, age) => {
          this.metrics.pendingTxs.set(count);
          this.metrics.oldestPendingAge.set(age);
          this.oldestPendingSeconds = age;
        },
        onNonceTooHigh: () => void this.checkIdentity?.(),
      },
    );
    const quarantine = new Quarantine(this.db, config.quarantine);
    this.scheduler = new Scheduler(
      this.db,
      this.rpc,
      this.txManager,
      {
        billingAddress: config.billingAddress,
        operator: this.signer.address,
        gasBudget: BigInt(config.batch.gasBudget),
        maxItems: config.batch.maxItems,
        maxPendingTxs: config.maxPendingTxs,
        pastDueRetrySeconds: config.pastDueRetrySeconds,
        // Work leases split the work between instances sharing a store; alone on the embedded one, claims only cost.
        leases: this.shared ? leases : undefined,
        quarantine,
      },
      this.logger,
      {
        onRegistered: (registered) => this.onRegistered(registered),
        onOutcome: ({ confirmed, failed }) => {
          this.metrics.chargesConfirmed.inc(confirmed);
          this.metrics.chargesFailed.inc(failed);
        },
        onQuarantine: (ids) => this.showQuarantine(ids),
      },
    );
    // Kept across restarts: shown (metric and log) from the start.
    const held = await quarantine.ids();
    this.showQuarantine(held);
    if (held.length > 0) {
      this.logger.warn(
        { quarantined: held.map(String) },
        `quarantined subscriptions ${held.join(", ")}: kept from before the restart`,
      );
    }
    const open = await this.txManager.openCount();
    if (open > 0) this.logger.info({ pending: open }, "resuming pending transactions");
    await this.retrying("resume", () => (this.txManager as TxManager).tick({ rebroadcast: true }));
    this.phase = "running";
    this.logger.info({ cursor: (await this.sync.cursor()).number }, "store ready: syncing");
    this.loop = this.run();
  }

  /** Stops the keeper on a condition a restart cannot fix; {@link halted} tells the process. */
  private halt(err: Error): void {
    if (this.stopped) return;
    this.logger.fatal({ error: err.message }, "keeper halted");
    this.haltWith?.(err);
    void this.stop();
  }

  /** On an automining dev node, block-based waits only end when another transaction arrives: say so once. */
  private async hintAutomine(): Promise<void> {
    const { config } = this;
    if (!DEV_CHAIN_IDS.has(config.chainId) || (config.confirmations === 0 && config.txConfirmations <= 1)) return;
    if ((await isAutomining(this.rpc)) !== true) return;
    this.logger.warn(
      { confirmations: config.confirmations, txConfirmations: config.txConfirmations },
      "the node automines (a block only per transaction): with these confirmations charges stall until more blocks are mined; set confirmations 0 and txConfirmations 1 (keeper init --dev), or mine blocks on an interval",
    );
  }

  /** Waits until the RPC answers, then checks it serves the configured chain and contract. Returns the registry. */
  private async connect(): Promise<string> {
    const { config } = this;
    const chainId = await this.retrying("connect", () => this.rpc.chainId());
    if (chainId === undefined) return "";
    if (this.rpc.pool.size > 1) {
      // An endpoint on another chain must never serve a read: refuse to start, naming it.
      for (const [i, endpoint] of (await this.rpc.chainIds()).entries()) {
        if (endpoint.chainId instanceof Error) {
          this.logger.warn({ endpoint: endpoint.label, error: endpoint.chainId.message }, "rpc endpoint not answering");
        } else if (endpoint.chainId !== config.chainId) {
          throw new ConfigError([
            `rpc.urls.${i}: ${endpoint.label} serves chain ${endpoint.chainId}, but the config says ${config.chainId}`,
          ]);
        }
      }
    }
    if (chainId !== config.chainId) {
      throw new ConfigError([
        `chainId: the RPC serves chain ${chainId}, but the config says ${config.chainId} (wrong rpcUrl or chainId?)`,
      ]);
    }
    const code = await this.retrying("connect", () => this.rpc.getCode(config.billingAddress));
    if (code === undefined) return "";
    if (code === "0x") {
      throw new ConfigError([
        `billingAddress: no contract at ${config.billingAddress} on chain ${chainId} (wrong address or network?)`,
      ]);
    }
    const result = await this.retrying("connect", async () => {
      try {
        return await this.rpc.call({
          to: config.billingAddress,
          data: billingInterface.encodeFunctionData("registry"),
        });
      } catch (err) {
        if (classifyRpcError(err) === "reverted") return "0x";
        throw err;
      }
    });
    if (result === undefined) return "";
    try {
      return billingInterface.decodeFunctionResult("registry", result)[0] as string;
    } catch {
      throw new ConfigError([
        `billingAddress: the contract at ${config.billingAddress} is not a RecurringBilling (registry() failed)`,
      ]);
    }
  }

  /** Runs `fn` until it succeeds or the keeper stops (undefined), backing off on failures. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const value = await fn();
        this.lastError = undefined;
        return value;
      } catch (err) {
        this.noteError(what, err);
        await sleep(this.backoff(attempt), this.stopController.signal);
      }
    }
    return undefined;
  }

  private backoff(failures: number): number {
    return Math.min(MAX_BACKOFF_MS, this.config.pollIntervalMs * 2 ** Math.min(Math.max(failures - 1, 0), 5));
  }

  private noteError(what: string, err: unknown): void {
    const kind = classifyRpcError(err);
    this.lastError = `${what}: ${(err as Error).message}`;
    this.logger.error(
      // The stack pins down a bug (kind "other"); RPC failures are routine and their stack says nothing new.
      { step: what, kind, error: (err as Error).message, ...(kind === "other" ? { stack: (err as Error).stack } : {}) },
      kind === "unreachable" ? "RPC unreachable: retrying" : `${what} failed: retrying`,
    );
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let busy = false;
      try {
        busy = await this.iterate();
        failures = 0;
        this.lastSuccessAt = Date.now();
        this.lastError = undefined;
      } catch (err) {
        this.noteError("loop", err);
        failures++;
      }
      this.health();
      if (!busy || failures > 0)
        await sleep(failures > 0 ? this.backoff(failures) : this.config.pollIntervalMs, this.stopController.signal);
    }
  }

  /**
   * One pass: sync (the leader) or read the leader's progress (the others), follow transactions, schedule charges,
   * check the balance. Returns true while catching up.
   */
  async iterate(): Promise<boolean> {
    const sync = this.sync as EventSync;
    const leases = this.leases as Leases;
    const timed = this.timedPhase;
    let result;
    if (await timed("leases", () => this.holdsSyncLease())) {
      try {
        result = await timed("sync", () =>
          sync.catchUp(this.nearHead ? 1 : SYNC_STEPS_PER_ITERATION, () => this.stopped),
        );
      } catch (err) {
        if (!(err instanceof LeaseLostError)) throw err;
        this.setSyncLeader(false);
      }
    }
    const following = result === undefined;
    result ??= await timed("sync", () => sync.follow(this.config.leases.followerLagBlocks));
    this.updateEndpointMetrics();
    if (this.stopped) return false;
    await timed("leases", () => leases.renewInFlight());
    await timed("txs", () => (this.txManager as TxManager).tick());
    this.caughtUpOnce ||= result.caughtUp;
    this.nearHead =
      this.caughtUpOnce && result.head - this.config.confirmations - result.cursor <= SCHEDULE_WITHIN_BLOCKS;
    if ((result.caughtUp || this.nearHead) && !result.held && !this.stopped) {
      const cursor = result.cursor;
      await timed("schedule", () => (this.scheduler as Scheduler).tick(cursor, () => this.stopped));
    }
    if (result.caughtUp && !following) {
      const cursor = result.cursor;
      await timed("checks", async () => this.countCheck?.maybeCheck(cursor));
    }
    await timed("checks", () => this.checkBalance());
    // A follower waits for the leader at the normal pace instead of spinning.
    return !following && !result.caughtUp;
  }

  /** Runs one phase of a pass and adds its wall time to `keeper_loop_seconds_total{phase}`. */
  private readonly timedPhase = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      this.metrics.loopSeconds.inc({ phase }, (performance.now() - started) / 1000);
    }
  };

  /** With a shared store, takes or renews the sync lease; with the embedded one this keeper is always the leader. */
  private async holdsSyncLease(): Promise<boolean> {
    const leader = this.shared ? await (this.leases as Leases).acquire(SYNC_LEASE) : true;
    this.setSyncLeader(leader);
    return leader;
  }

  /**
   * The heartbeat: renews the sync lease (when this instance leads) and every work lease it holds, whatever the loop
   * is doing. A lost sync lease makes this instance a follower (the next pass tries to acquire it again); the fence
   * still guards the sync commit in progress. Failures are logged and counted; the next beat retries.
   */
  private async renewLeases(): Promise<void> {
    const leases = this.leases as Leases;
    try {
      if (this.syncLeader && !(await leases.acquire(SYNC_LEASE))) this.setSyncLeader(false);
      await leases.renewHeld();
    } catch (err) {
      this.metrics.leaseHeartbeatFailures.inc();
      this.logger.warn({ error: (err as Error).message }, "lease heartbeat failed: retrying at the next beat");
    }
  }

  private updateEndpointMetrics(): void {
    for (const stats of this.rpc.pool.stats()) {
      this.metrics.rpcEndpointLag.set({ endpoint: stats.label }, stats.lag);
      this.metrics.rpcEndpointHealthy.set({ endpoint: stats.label }, stats.healthy ? 1 : 0);
    }
  }

  private setSyncLeader(leader: boolean): void {
    this.metrics.syncLeader.set(leader ? 1 : 0);
    // The outbox is the leader's to drain (and to report).
    if (!leader) this.metrics.busOutboxDepth.set(0);
    if (leader !== this.syncLeader && this.shared) {
      const fields = { instanceId: this.config.instanceId };
      if (leader) this.logger.info(fields, "sync leader: this instance syncs events and publishes them to the bus");
      else this.logger.info(fields, "sync follower: another instance holds the sync lease");
    }
    this.syncLeader = leader;
  }

  private showQuarantine(ids: readonly bigint[]): void {
    this.metrics.quarantined.reset();
    for (const id of ids) this.metrics.quarantined.set({ subscription_id: id.toString() }, 1);
  }

  private onRegistered(registered: boolean): void {
    this.metrics.operatorRegistered.set(registered ? 1 : 0);
    if (registered !== this.registered) {
      if (registered) this.logger.info({ operator: this.signer.address }, "operator is registered: charging enabled");
      else
        this.logger.warn(
          { operator: this.signer.address },
          "operator is NOT an operator of the billing contract: no charges will be sent",
        );
    }
    this.registered = registered;
  }

  private async checkBalance(): Promise<void> {
    const balance = await this.rpc.getBalance(this.signer.address);
    this.balanceWei = balance;
    // What a node demands up front for a batch with the whole gas budget at today's fees (2 x base fee + tip).
    const baseFee = (await this.rpc.getBlock("latest")).baseFeePerGas ?? 0n;
    const tip = BigInt(Math.round(this.config.fees.maxPriorityFeePerGasGwei * GWEI));
    this.nextBatchCostWei = BigInt(this.config.batch.gasBudget) * (baseFee * 2n + tip);
    this.metrics.operatorBalance.set(Number(balance));
    const low = balance < this.config.lowBalanceWei;
    this.metrics.operatorBalanceLow.set(low ? 1 : 0);
    if (low && !this.balanceLow) {
      this.logger.warn(
        {
          operator: this.signer.address,
          balanceWei: balance.toString(),
          thresholdWei: this.config.lowBalanceWei.toString(),
        },
        "operator ETH balance is low: fund it before charges stall",
      );
    }
    this.balanceLow = low;
  }

  /** URL of the billing console once started (undefined when `console.port` is not set). */
  get consoleUrl(): string | undefined {
    return this.consoleServer?.url;
  }

  /** Serves the billing console on the store when configured; its chain time and token names come from the RPC. */
  private async startConsole(db: Db): Promise<void> {
    const { console: settings } = this.config;
    if (settings.port === undefined) return;
    const chainClock = cachedFor(1000, async () => Number((await this.rpc.getBlock("latest")).timestamp));
    const tokens = new TokenNames(this.rpc);
    this.consoleServer = await startConsoleServer(
      {
        db,
        health: () => ({ ...this.health(), headLagBlocks: this.syncLag ?? null }),
        chainTime: chainClock,
        tokenInfo: (token) => tokens.lookup(token),
      },
      {
        host: settings.host,
        port: settings.port,
        token: settings.token,
        onError: (err) =>
          this.logger.warn({ error: (err as Error).message }, "billing console: the store could not answer"),
      },
    );
    this.logger.info({ consoleUrl: this.consoleServer.url }, "billing console started");
  }

  health(): Health {
    const staleAfter = Math.max(30_000, this.config.pollIntervalMs * 10);
    const fresh = this.phase === "running" && Date.now() - this.lastSuccessAt < staleAfter;
    const report = evaluateHealth(
      {
        phase: this.phase,
        loopFresh: fresh,
        operatorRegistered: this.registered,
        balanceWei: this.balanceWei,
        nextBatchCostWei: this.nextBatchCostWei,
        fundsRefused: this.txManager?.fundsRefused,
        headLagBlocks: this.syncLag,
        oldestPendingSeconds: this.oldestPendingSeconds,
      },
      this.config.health,
    );
    for (const reason of HEALTH_REASONS) {
      this.metrics.healthProblem.set({ reason }, report.reasons.some((r) => r.reason === reason) ? 1 : 0);
    }
    return {
      ok: report.ok,
      reasons: report.reasons.map((r) => r.reason),
      problems: report.reasons,
      phase: this.phase,
      lastSuccessAt: this.lastSuccessAt === 0 ? null : new Date(this.lastSuccessAt).toISOString(),
      lastError: this.lastError ?? null,
      operatorRegistered: this.registered ?? null,
      operatorBalanceLow: this.balanceLow,
    };
  }

  /** Stops polling, lets the current step (and its store transaction) finish, then closes everything. */
  async stop(): Promise<void> {
    if (this.phase === "stopped") return;
    this.phase = "stopping";
    this.stopController.abort();
    await this.loop?.catch(() => {});
    // The batch in flight gets a moment to be confirmed; after that, closing the bus ends it (rows not deleted are
    // published again by the next start or the next leader).
    const draining = this.sync?.outbox.stop();
    await withTimeout(draining, OUTBOX_STOP_GRACE_MS);
    await this.busInstance?.close().catch(() => {});
    await draining;
    // Nothing renews the leases from here on: the claims left lapse after the TTL, the sync lease is handed over.
    await this.leaseHeartbeat?.stop();
    await this.identityCheck?.stop();
    // Hand the sync over at once instead of after the lease expires.
    if (this.shared && this.syncLeader) await this.leases?.release(SYNC_LEASE).catch(() => {});
    await this.consoleServer?.close();
    if (this.db && !this.deps.db) {
      await this.db.close();
      if ("dataDir" in this.config.store) restrictTree(this.config.store.dataDir);
    }
    await this.metricsServer?.close();
    await this.storeLock?.release();
    this.phase = "stopped";
    this.logger.info("keeper stopped");
  }
}
