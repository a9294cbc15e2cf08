// Event sync: polls eth_getLogs over bounded ranges `confirmations` behind the head, detects reorgs by comparing
// stored block hashes with the chain, rolls derived state back to the common ancestor, and advances the cursor only
// in the store transaction that records the events. That transaction also queues the new events for the bus (a
// rollback's, the retractions), and the outbox publisher sends them once committed: the bus follows the store.
import type { Logger } from "pino";

import type { ChainEvent, EventBus } from "../bus/event-bus.js";
import { publicationSequence } from "../bus/messages.js";
import { enqueue, type OutboxOptions, OutboxPublisher } from "../bus/outbox.js";
import { type BlockHeader, classifyRpcError, mapLimit, type RpcClient, type RpcLog, suggestedRange } from "../rpc.js";
import { bloomMayContain } from "../rpc/bloom.js";
import { type Db, toNumber } from "../store/index.js";
import { decodeLog } from "./decode.js";
import { RangeSizer } from "./range-sizer.js";
import { rollbackEvents, storeEvents } from "./state.js";

export interface EventSyncOptions {
  chainId: number;
  /** The billing contract. */
  address: string;
  startBlock: number;
  confirmations: number;
  /** Blocks near the head whose hashes are all checked and kept; reorgs deeper than this force a full resync. */
  reorgWindow: number;
  range: { initial: number; min: number; max: number };
  /** Tuning of the bus outbox publisher (bus/outbox.ts). */
  outbox?: OutboxOptions;
}

export interface EventSyncHooks {
  onEvents?(count: number): void;
  onReorg?(depth: number): void;
  onProgress?(cursor: number, head: number): void;
  /**
   * Runs first in every store transaction that moves the cursor or deletes published outbox rows; throwing aborts
   * it. With several keeper instances it checks the sync lease, so a leader that lost its lease never commits over
   * its successor's work and stops draining the outbox.
   */
  beforeCommit?(tx: Db): Promise<void>;
  /** Bus messages committed and not yet confirmed by the bus, whenever measured. */
  onOutboxDepth?(depth: number): void;
  /** An eth_getLogs answer contradicted the block headers (a lagging index): the cursor was held. */
  onInconsistentLogs?(block: number): void;
  /** A stored block hash did not match a read of the chain; `confirmed` says whether re-reads confirmed a reorg. */
  onReorgSuspicion?(confirmed: boolean): void;
}

export interface Cursor {
  number: number;
  hash: string | null;
  /** Reorg rollbacks committed so far: the bus sequence of what is stored from here derives from it. */
  reorgs: number;
}

export interface SyncStepResult {
  head: number;
  cursor: number;
  /** The cursor is at `head - confirmations`. */
  caughtUp: boolean;
  /** The step held the cursor on answers that contradict each other (read again at the next step). */
  held?: boolean;
}

/**
 * Logs one range should bring at most (memory and store transaction size), whatever the event density. Each log is
 * held several times over while a range is stored (JSON answer, parsed log, decoded event, insert parameters, outbox
 * row), and the keeper's heap keeps its high-water mark: 2,500 logs cost a few tens of MiB, and more requests cost
 * the sync little.
 */
const TARGET_LOGS_PER_RANGE = 2_500;

/** An answer with more logs than this many times the target is dropped and read again in smaller ranges. */
const TOO_DENSE_FACTOR = 2;

/**
 * Blocks in the first range of a run, before the event density is known: a history can start with blocks full of
 * events, and one answer of a whole dense stretch is what made memory grow (the range doubles from here).
 */
const FIRST_RANGE_BLOCKS = 16;

/** Events per INSERT statement. */
const STORE_CHUNK = 2_000;

/** The range must be read again (the chain moved under it, or it was too large). */
class RetryRangeError extends Error {}

/** The provider's answers contradict each other (a log index behind its headers): held, retried with a pause. */
class InconsistentAnswerError extends RetryRangeError {}

/**
 * Re-reads that must all disagree with a stored block hash before it counts as reorged out, and the pauses before
 * them: spread over ~2 s so a short burst of wrong answers from one node behind a load balancer is outlasted. The
 * last two must also agree with each other: a real reorg shows one new block (or none) at that height, while a
 * flaky node's wrong answers differ from read to read.
 */
const REORG_CONFIRM_DELAYS_MS = [200, 600, 1200];

/** Longest pause after inconsistent answers, between retries of the same range. */
const MAX_INCONSISTENT_PAUSE_MS = 2000;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class EventSync {
  readonly sizer: RangeSizer;
  /** Sends what the sync committed to the bus (only while this instance syncs). */
  readonly outbox: OutboxPublisher;
  /** Consecutive ranges held for inconsistent answers (the pause between retries grows with it). */
  private inconsistentStreak = 0;

  constructor(
    private readonly db: Db,
    private readonly rpc: RpcClient,
    bus: EventBus,
    private readonly options: EventSyncOptions,
    private readonly logger: Logger,
    private readonly hooks: EventSyncHooks = {},
  ) {
    const { min, max, initial } = options.range;
    this.sizer = new RangeSizer(min, max, Math.max(min, Math.min(initial, FIRST_RANGE_BLOCKS)), TARGET_LOGS_PER_RANGE);
    this.outbox = new OutboxPublisher(db, bus, logger, options.outbox, {
      beforeDelete: hooks.beforeCommit,
      onDepth: hooks.onOutboxDepth,
    });
  }

  /** The last synced block (startBlock - 1 before the first range). */
  async cursor(): Promise<Cursor> {
    const rows = await this.db.query<{ block_number: unknown; block_hash: string | null; reorgs: unknown }>(
      "SELECT block_number, block_hash, reorgs FROM sync_cursor WHERE id = 1",
    );
    if (rows.length === 0) return { number: this.options.startBlock - 1, hash: null, reorgs: 0 };
    return { number: toNumber(rows[0].block_number), hash: rows[0].block_hash, reorgs: toNumber(rows[0].reorgs) };
  }

  /**
   * Progress without syncing, for an instance that is not the sync leader: the cursor the leader stored. Counts as
   * caught up within `slackBlocks` of the confirmed head (the leader syncs on its own poll interval).
   */
  async follow(slackBlocks: number): Promise<SyncStepResult> {
    const head = await this.rpc.blockNumber();
    const cursor = (await this.cursor()).number;
    this.hooks.onProgress?.(cursor, head);
    return { head, cursor, caughtUp: cursor >= head - this.options.confirmations - slackBlocks };
  }

  /**
   * Publishes what earlier steps (or a keeper that died) committed, then syncs until caught up (or `maxSteps`
   * ranges), checking `shouldStop` between ranges.
   */
  async catchUp(maxSteps: number, shouldStop: () => boolean): Promise<SyncStepResult> {
    await this.outbox.publishCommitted();
    let result = await this.step();
    for (let i = 1; i < maxSteps && !result.caughtUp && !result.held && !shouldStop(); i++) result = await this.step();
    return result;
  }

  /** One step: a reorg check, then at most one range of logs. */
  async step(): Promise<SyncStepResult> {
    const head = await this.rpc.blockNumber();
    const target = head - this.options.confirmations;
    const cursor = await this.cursor();

    if (cursor.hash !== null) {
      const onChain = await this.rpc.findBlock(cursor.number);
      if ((onChain === null || onChain.hash !== cursor.hash) && (await this.reorgConfirmed(cursor, onChain))) {
        await this.rollback(cursor);
        return { head, cursor: (await this.cursor()).number, caughtUp: false };
      }
      if (onChain === null || onChain.hash !== cursor.hash) {
        return { head, cursor: cursor.number, caughtUp: false, held: true };
      }
    }
    if (target <= cursor.number) {
      this.hooks.onProgress?.(cursor.number, head);
      return { head, cursor: cursor.number, caughtUp: true };
    }

    const from = cursor.number + 1;
    const to = Math.min(target, from + this.sizer.size - 1);
    try {
      await this.syncRange(cursor, from, to, head);
    } catch (err) {
      if (err instanceof InconsistentAnswerError) {
        this.inconsistentStreak++;
        await pause(Math.min(MAX_INCONSISTENT_PAUSE_MS, 100 * 2 ** Math.min(this.inconsistentStreak, 5)));
        return { head, cursor: cursor.number, caughtUp: false, held: true };
      }
      if (err instanceof RetryRangeError) {
        this.logger.warn({ from, to }, err.message);
        return { head, cursor: cursor.number, caughtUp: false };
      }
      throw err;
    }
    this.inconsistentStreak = 0;
    this.hooks.onProgress?.(to, head);
    return { head, cursor: to, caughtUp: to >= target };
  }

  /**
   * Whether a stored block hash that a read contradicted is really reorged out: the block is read again (from
   * another endpoint when there is one) a few times, spread over time, and every read must disagree. One flaky read
   * or a short burst of them (a node behind a load balancer) costs a pause, never a rollback.
   */
  private async reorgConfirmed(cursor: Cursor, firstRead: BlockHeader | null): Promise<boolean> {
    const reads: (string | null)[] = [firstRead?.hash ?? null];
    let confirmed = true;
    for (const delay of REORG_CONFIRM_DELAYS_MS) {
      this.rpc.suspectLastAnswer("eth_getBlockByNumber");
      await pause(delay);
      const again = await this.rpc.findBlock(cursor.number);
      reads.push(again?.hash ?? null);
      if (again !== null && again.hash === cursor.hash) {
        confirmed = false;
        break;
      }
    }
    if (confirmed && reads.at(-1) !== reads.at(-2)) confirmed = false;
    // "No such block" from a node whose head is below it (a lagging endpoint, or a lagging node behind a balancer)
    // says nothing about a reorg while any endpoint's head is at or above the block: only a chain that got shorter
    // everywhere confirms it.
    if (confirmed && reads.at(-1) === null) {
      const head = Math.max(await this.rpc.blockNumber(), this.rpc.bestKnownHead() ?? 0);
      if (head >= cursor.number) confirmed = false;
    }
    const byHash = confirmed ? await this.rpc.findBlockByHash(cursor.hash as string).catch(() => undefined) : undefined;
    this.hooks.onReorgSuspicion?.(confirmed);
    this.logger.warn(
      {
        block: cursor.number,
        stored: cursor.hash,
        reads,
        storedHashKnown: byHash === undefined ? "not asked" : byHash !== null,
        confirmed,
      },
      confirmed ? "reorg confirmed by repeated reads" : "suspected reorg not confirmed: a read disagreed once",
    );
    return confirmed;
  }

  /**
   * Headers of consecutive `numbers`, re-reading (a few rounds) both ends of every link that does not hold (a
   * parentHash that is not the previous hash): one bad read (a node of another fork behind a load balancer) must not
   * cost the whole range. Links still broken are left for {@link checkLinks}: the chain moved, the range is read again.
   */
  private async readLinkedHeaders(numbers: number[]): Promise<BlockHeader[]> {
    const headers = await mapLimit(numbers, 8, (n) => this.rpc.getBlock(n));
    for (let round = 0; round < 3; round++) {
      const suspect = new Set<number>();
      for (let i = 1; i < headers.length; i++) {
        if (headers[i].parentHash !== headers[i - 1].hash) suspect.add(i - 1).add(i);
      }
      if (suspect.size === 0) break;
      const again = await mapLimit([...suspect], 8, (i) => this.rpc.getBlock(headers[i].number));
      [...suspect].forEach((i, k) => (headers[i] = again[k]));
    }
    return headers;
  }

  private async syncRange(cursor: Cursor, from: number, to: number, head: number): Promise<void> {
    // The headers are read BEFORE the logs: every log must sit in the canonical block of its number, and the range
    // must start on the cursor. A reorg in between either shows as a log whose block hash differs, or leaves a
    // cursor hash that the next step finds non-canonical. Near the head every header of the range is read: they
    // must form one chain (so no wrong header is stored), and their blooms prove the log answer complete.
    const window = head - this.options.reorgWindow;
    const nearHead = to > window;
    const checkFrom = nearHead && cursor.hash !== null && from > window;
    const numbers = new Set<number>([to]);
    if (nearHead) for (let n = Math.max(from, window + 1); n <= to; n++) numbers.add(n);
    // The successor of the last block vouches for its hash (its parentHash), when the chain has it already.
    if (nearHead && to < head) numbers.add(to + 1);
    const headers = await this.readLinkedHeaders([...numbers].sort((a, b) => a - b));
    const byNumber = new Map(headers.map((h) => [h.number, h]));
    checkLinks(headers, checkFrom && headers[0].number === from ? cursor : null);
    byNumber.delete(to + 1);

    let logs;
    try {
      logs = await this.rpc.getLogs({ address: this.options.address, fromBlock: from, toBlock: to });
    } catch (err) {
      const kind = classifyRpcError(err);
      if (kind === "too-many-results" || kind === "timeout") {
        const suggestion = suggestedRange(err);
        const before = this.sizer.size;
        if (!this.sizer.shrink(suggestion ? suggestion.to - suggestion.from + 1 : undefined)) throw err;
        this.logger.info({ from, to, kind, rangeBefore: before, rangeAfter: this.sizer.size }, "log range shrunk");
        throw new RetryRangeError("retrying with a smaller range");
      }
      throw err;
    }
    const densestBlock = densestBlockLogs(logs);
    if (logs.length > TOO_DENSE_FACTOR * TARGET_LOGS_PER_RANGE && this.sizer.tooDense(logs.length, densestBlock)) {
      this.logger.info(
        { from, to, logs: logs.length, rangeAfter: this.sizer.size },
        "log range too dense: read smaller",
      );
      throw new RetryRangeError("range too dense: retrying with a smaller range");
    }
    if (nearHead) {
      const logBlocks = [...new Set(logs.map((log) => log.blockNumber))].filter((n) => !byNumber.has(n) && n > window);
      for (const header of await mapLimit(logBlocks, 8, (n) => this.rpc.getBlock(n)))
        byNumber.set(header.number, header);
    }
    for (const log of logs) {
      const header = byNumber.get(log.blockNumber);
      if (header !== undefined && header.hash !== log.blockHash) {
        throw new RetryRangeError(`block ${log.blockNumber} changed while syncing; retrying`);
      }
    }
    if (nearHead) await this.checkComplete(logs, [...byNumber.values()]);
    const logCount = logs.length;

    const events = logs
      .sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex)
      .map((log) => decodeLog(this.options.chainId, log))
      .filter((event): event is ChainEvent => event !== undefined);

    const last = byNumber.get(to) as BlockHeader;
    const fresh = await this.db.transaction(async (tx) => {
      await this.hooks.beforeCommit?.(tx);
      // Bounded statements: one giant INSERT grows the store's (PGlite: WASM) memory for good.
      const stored: ChainEvent[] = [];
      for (let i = 0; i < events.length; i += STORE_CHUNK) {
        stored.push(...(await storeEvents(tx, events.slice(i, i + STORE_CHUNK))));
      }
      const kept = [...byNumber.values()];
      await tx.query(
        `INSERT INTO blocks (number, hash, parent_hash)
         SELECT * FROM unnest($1::text[]::bigint[], $2::text[], $3::text[])
         ON CONFLICT (number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash`,
        [kept.map((h) => String(h.number)), kept.map((h) => h.hash), kept.map((h) => h.parentHash)],
      );
      const [{ reorgs }] = await tx.query<{ reorgs: unknown }>(
        `INSERT INTO sync_cursor (id, block_number, block_hash) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash
         RETURNING reorgs`,
        [to, last.hash],
      );
      // Only the events new to the store: one publication per insert, as one retraction per delete.
      await enqueue(tx, "event", publicationSequence("event", toNumber(reorgs)), stored);
      await tx.query("DELETE FROM blocks WHERE number < $1", [to - this.options.reorgWindow]);
      return stored;
    });
    this.sizer.grow(logCount, densestBlock);
    if (fresh.length > 0) this.hooks.onEvents?.(fresh.length);
    this.logger.debug({ from, to, events: events.length, stored: fresh.length }, "range synced");
    await this.outbox.publishCommitted();
  }

  /**
   * Proves the log answer complete for the headers read: for a block whose bloom has the contract's bits but no log
   * in the answer, the block's receipts are read; logs of the contract there mean the range answer was behind (a
   * lagging log index). A log in a block whose bloom lacks the contract is as wrong. Either
   * way the cursor stays, the endpoint is set aside, and the range is read again after a pause.
   */
  private async checkComplete(logs: readonly RpcLog[], headers: readonly BlockHeader[]): Promise<void> {
    const withLogs = new Set(logs.map((log) => log.blockNumber));
    const address = this.options.address;
    for (const header of headers) {
      if (header.logsBloom === undefined) continue;
      const hit = bloomMayContain(header.logsBloom, address);
      let problem: string | undefined;
      let byHash: RpcLog[] | string | undefined;
      if (!hit && withLogs.has(header.number)) problem = "logs in a block whose bloom lacks the contract";
      else if (hit && !withLogs.has(header.number)) {
        // The receipts, not the log index, say whether the contract logged there (blooms of busy blocks are full of
        // other contracts' bits: most hits are false positives).
        byHash = await this.rpc
          .logsFromReceipts(address, header.hash)
          .catch((err: unknown) => `error: ${(err as Error).message}`);
        if (typeof byHash === "string" || byHash.length > 0)
          problem = "the receipts have logs of the contract, the range answer none";
      }
      if (problem === undefined) continue;
      const endpoint = this.rpc.suspectLastAnswer("eth_getLogs");
      this.hooks.onInconsistentLogs?.(header.number);
      this.logger.warn(
        {
          block: header.number,
          hash: header.hash,
          bloomHasContract: hit,
          rangeAnswerLogs: logs.filter((log) => log.blockNumber === header.number).length,
          receiptLogs: typeof byHash === "string" ? byHash : byHash?.length,
          endpoint,
        },
        `inconsistent eth_getLogs answer (${problem}): cursor held, range read again`,
      );
      throw new InconsistentAnswerError(problem);
    }
  }

  /** Finds the newest stored block still on the chain and rolls everything after it back. */
  private async rollback(cursor: Cursor): Promise<void> {
    const stored = await this.db.query<{ number: unknown; hash: string }>(
      "SELECT number, hash FROM blocks WHERE number <= $1 ORDER BY number DESC",
      [cursor.number],
    );
    let ancestor: Pick<Cursor, "number" | "hash"> = { number: this.options.startBlock - 1, hash: null };
    for (const block of stored) {
      const onChain = await this.rpc.findBlock(Number(block.number));
      if (onChain !== null && onChain.hash === block.hash) {
        ancestor = { number: Number(block.number), hash: block.hash };
        break;
      }
    }
    if (ancestor.hash === null) {
      this.logger.warn(
        { cursor: cursor.number },
        "reorg deeper than the stored block hashes: resyncing from startBlock",
      );
    }
    const depth = cursor.number - ancestor.number;
    await this.db.transaction(async (tx) => {
      await this.hooks.beforeCommit?.(tx);
      const removed = await rollbackEvents(
        tx,
        ancestor.number,
        this.options.chainId,
        this.options.address.toLowerCase(),
      );
      await tx.query("DELETE FROM blocks WHERE number > $1", [ancestor.number]);
      const [{ reorgs }] = await tx.query<{ reorgs: unknown }>(
        `INSERT INTO sync_cursor (id, block_number, block_hash, reorgs) VALUES (1, $1, $2, 1)
         ON CONFLICT (id) DO UPDATE SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash,
           reorgs = sync_cursor.reorgs + 1
         RETURNING reorgs`,
        [ancestor.number, ancestor.hash],
      );
      // Queued with the sequence of this rollback, published once it committed.
      await enqueue(tx, "removed", publicationSequence("removed", toNumber(reorgs)), removed);
      this.logger.warn(
        { depth, from: cursor.number, ancestor: ancestor.number, removedEvents: removed.length },
        "reorg detected: rolled back to the common ancestor",
      );
    });
    this.hooks.onReorg?.(depth);
    await this.outbox.publishCommitted();
  }
}

/** Logs in the block with the most of them. */
function densestBlockLogs(logs: readonly RpcLog[]): number {
  const perBlock = new Map<number, number>();
  let densest = 0;
  for (const log of logs) {
    const n = (perBlock.get(log.blockNumber) ?? 0) + 1;
    perBlock.set(log.blockNumber, n);
    if (n > densest) densest = n;
  }
  return densest;
}

/** Checks that `headers` form one chain, starting on `cursor` when given. */
function checkLinks(headers: BlockHeader[], cursor: Cursor | null): void {
  if (cursor?.hash && headers[0].parentHash !== cursor.hash) {
    // The cursor block itself was replaced: the next step's cursor check rolls back.
    throw new RetryRangeError(`block ${headers[0].number} does not extend the synced block ${cursor.number}`);
  }
  for (let i = 1; i < headers.length; i++) {
    if (headers[i].parentHash !== headers[i - 1].hash) {
      throw new RetryRangeError(`blocks ${headers[i - 1].number}..${headers[i].number} changed while syncing`);
    }
  }
}
