// Transaction manager: one nonce stream for the operator key. Every signed transaction (nonce, fees, raw bytes, hash)
// is stored BEFORE it is broadcast, so after a crash each pending nonce is resumed and whichever of its versions
// mined is found. Stuck transactions are replaced with both fees bumped; a receipt only counts once it has the
// required confirmations and its block is still canonical.
import { Transaction } from "ethers";
import type { Logger } from "pino";

import { classifyRpcError, mapLimit, type RpcClient, type RpcReceipt } from "./rpc.js";
import type { OperatorSigner } from "./signer.js";
import { type Db, toBigInt, toNumber } from "./store/index.js";

export type TxState = "pending" | "mined" | "confirmed" | "failed" | "superseded";

export interface TxRequest {
  to: string;
  data: string;
  gasLimit: bigint;
  /** Subscriptions this transaction charges; not scheduled again while it is in flight. */
  subscriptionIds: readonly bigint[];
}

export interface TxManagerOptions {
  chainId: number;
  /** Cap on maxFeePerGas, in wei. */
  maxFeePerGas: bigint;
  /** Cap on maxPriorityFeePerGas, in wei. */
  maxPriorityFeePerGas: bigint;
  /** Replacement bump on both fee fields, percent (>= 10). */
  bumpPercent: number;
  /** A transaction not mined this long after its last version was sent is replaced. */
  replaceAfterMs: number;
  /** Blocks a receipt needs (its own included) before it is final. */
  confirmations: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface TxManagerHooks {
  onSent?(tx: { nonce: number; hash: string; subscriptionIds: readonly bigint[] }): void;
  onReplaced?(tx: { nonce: number; hash: string }): void;
  /** A transaction is final: its receipt has the confirmations and sits in a canonical block. */
  onFinal?(tx: { nonce: number; subscriptionIds: bigint[] }, receipt: RpcReceipt): Promise<void> | void;
  onPending?(count: number, oldestAgeSeconds: number): void;
  /** The node says a nonce is too high: it does not know our earlier transactions (a reset chain, or a lagging node). */
  onNonceTooHigh?(): void;
}

/** An open transaction as every tick reads it: without its calldata (read only to replace it). */
interface TxRow {
  nonce: unknown;
  state: TxState;
  subscription_ids: unknown[];
  created_at_ms: unknown;
  last_sent_at_ms: unknown;
  mined_hash: string | null;
  block_number: unknown;
  block_hash: string | null;
}

/** A signed version of a transaction, without its raw bytes (read only to send them). */
interface AttemptRow {
  hash: string;
  max_fee_per_gas: unknown;
  max_priority_fee_per_gas: unknown;
}

/** Both fees of a replacement: at least `bumpPercent` over the old ones and no less than the market now. */
export function bumpFees(
  old: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  market: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  bumpPercent: number,
): { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } {
  const factor = BigInt(Math.ceil(bumpPercent * 100));
  const bump = (value: bigint) => (value * (10_000n + factor) + 9_999n) / 10_000n;
  const max = (a: bigint, b: bigint) => (a > b ? a : b);
  const maxPriorityFeePerGas = max(bump(old.maxPriorityFeePerGas), market.maxPriorityFeePerGas);
  const maxFeePerGas = max(max(bump(old.maxFeePerGas), market.maxFeePerGas), maxPriorityFeePerGas);
  return { maxFeePerGas, maxPriorityFeePerGas };
}

/** How often the "fund the operator" warning may repeat while the node refuses transactions for lack of funds. */
const FUNDS_WARNING_EVERY_MS = 60_000;

export class TxManager {
  private readonly now: () => number;
  /**
   * Nonces whose latest version the node refused for insufficient funds: never mined, so never fee-bumped (a bump
   * only raises what the operator cannot pay); re-sent as they are each tick until the node takes them.
   */
  private readonly refusedForFunds = new Set<number>();
  private lastFundsWarningAt = -Infinity;
  /** Rows are keyed by sender: each operator key has its own nonce stream (a rotated key, several keepers). */
  private readonly sender: string;

  constructor(
    private readonly db: Db,
    private readonly rpc: RpcClient,
    private readonly signer: OperatorSigner,
    private readonly options: TxManagerOptions,
    private readonly logger: Logger,
    private readonly hooks: TxManagerHooks = {},
  ) {
    this.now = options.now ?? Date.now;
    this.sender = signer.address.toLowerCase();
  }

  /** The node refused a transaction for lack of funds and has taken none since: sending more would only fail. */
  get fundsRefused(): boolean {
    return this.refusedForFunds.size > 0;
  }

  /** Transactions sent and not yet final. */
  async openCount(): Promise<number> {
    const rows = await this.db.query<{ n: unknown }>(
      "SELECT count(*) AS n FROM txs WHERE sender = $1 AND state IN ('pending', 'mined')",
      [this.sender],
    );
    return toNumber(rows[0].n);
  }

  /**
   * Subscriptions that must not be scheduled: in an open transaction of this key, or in a final one (of any key)
   * whose block the event sync has not reached yet (its Charged event is not in the store). Other keys' open
   * transactions are covered by their work leases, which lapse when that keeper dies (its rows stay open forever).
   */
  async inFlightSubscriptionIds(syncedBlock: number): Promise<bigint[]> {
    const rows = await this.db.query<{ id: unknown }>(
      `SELECT DISTINCT unnest(subscription_ids) AS id FROM txs
       WHERE (sender = $2 AND state IN ('pending', 'mined')) OR (state IN ('confirmed', 'failed') AND block_number > $1)`,
      [syncedBlock, this.sender],
    );
    return rows.map((row) => toBigInt(row.id));
  }

  /** Fees to offer now, within the caps; undefined when the base fee alone is above the cap. */
  async marketFees(): Promise<{ maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | undefined> {
    const block = await this.rpc.getBlock("latest");
    const baseFee = block.baseFeePerGas ?? 0n;
    let tip: bigint;
    try {
      tip = await this.rpc.maxPriorityFeePerGas();
    } catch {
      tip = this.options.maxPriorityFeePerGas;
    }
    if (tip > this.options.maxPriorityFeePerGas) tip = this.options.maxPriorityFeePerGas;
    if (baseFee >= this.options.maxFeePerGas) return undefined;
    let maxFeePerGas = baseFee * 2n + tip;
    if (maxFeePerGas > this.options.maxFeePerGas) maxFeePerGas = this.options.maxFeePerGas;
    return { maxFeePerGas, maxPriorityFeePerGas: tip < maxFeePerGas ? tip : maxFeePerGas };
  }

  /** The next nonce: past every nonce this keeper ever signed and every nonce the chain has mined. */
  private async nextNonce(): Promise<number> {
    const [rows, chainNonce] = await Promise.all([
      this.db.query<{ n: unknown }>("SELECT max(nonce) AS n FROM txs WHERE sender = $1 AND state <> 'superseded'", [
        this.sender,
      ]),
      this.rpc.getTransactionCount(this.signer.address, "latest"),
    ]);
    const stored = rows[0].n === null ? -1 : toNumber(rows[0].n);
    return Math.max(stored + 1, chainNonce);
  }

  /**
   * Signs, stores and broadcasts a transaction. Call it only after the call was simulated: the nonce is reserved
   * here. Returns undefined when fees are above the cap (nothing stored).
   */
  async send(request: TxRequest): Promise<{ nonce: number; hash: string } | undefined> {
    return (await this.sendMany([request]))[0];
  }

  /**
   * {@link send} for several transactions on consecutive nonces: all are signed and stored in ONE store
   * transaction before the first broadcast, then broadcast in nonce order. Returns what was sent (nothing when fees
   * are above the cap).
   */
  async sendMany(requests: readonly TxRequest[]): Promise<{ nonce: number; hash: string }[]> {
    if (requests.length === 0) return [];
    if (this.fundsRefused) return [];
    const fees = await this.marketFees();
    if (fees === undefined) {
      this.logger.warn(
        { maxFeePerGas: this.options.maxFeePerGas.toString() },
        "base fee is above the fee cap: not sending",
      );
      return [];
    }
    const firstNonce = await this.nextNonce();
    const signed: { nonce: number; hash: string; raw: string; request: TxRequest }[] = [];
    for (const [i, request] of requests.entries()) {
      const nonce = firstNonce + i;
      const raw = await this.signer.signTransaction({
        type: 2,
        chainId: BigInt(this.options.chainId),
        nonce,
        to: request.to,
        data: request.data,
        value: 0n,
        gasLimit: request.gasLimit,
        maxFeePerGas: fees.maxFeePerGas,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
      });
      signed.push({ nonce, hash: Transaction.from(raw).hash as string, raw, request });
    }
    const now = this.now();
    const nonces = signed.map((s) => s.nonce);
    await this.db.transaction(async (tx) => {
      // A row left 'superseded' by another sender's use of a nonce is replaced.
      await tx.query("DELETE FROM tx_attempts WHERE sender = $2 AND nonce = ANY($1::int[])", [nonces, this.sender]);
      await tx.query("DELETE FROM txs WHERE sender = $2 AND nonce = ANY($1::int[]) AND state = 'superseded'", [
        nonces,
        this.sender,
      ]);
      for (const { nonce, hash, raw, request } of signed) {
        await tx.query(
          `INSERT INTO txs (sender, nonce, state, to_address, data, gas_limit, subscription_ids, created_at_ms, last_sent_at_ms)
           VALUES ($7, $1, 'pending', $2, $3, $4, $5::text[]::bigint[], $6, $6)`,
          [
            nonce,
            request.to,
            request.data,
            request.gasLimit.toString(),
            request.subscriptionIds.map(String),
            now,
            this.sender,
          ],
        );
        await this.insertAttempt(tx, nonce, hash, raw, fees, now);
      }
    });
    for (const { nonce, hash, raw, request } of signed) {
      this.logger.info(
        {
          nonce,
          hash,
          items: request.subscriptionIds.length,
          maxFeePerGas: fees.maxFeePerGas.toString(),
          maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString(),
        },
        "transaction sent",
      );
      this.hooks.onSent?.({ nonce, hash, subscriptionIds: request.subscriptionIds });
      await this.broadcast(nonce, hash, raw);
    }
    return signed.map(({ nonce, hash }) => ({ nonce, hash }));
  }

  private async insertAttempt(
    tx: Db,
    nonce: number,
    hash: string,
    raw: string,
    fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
    now: number,
  ): Promise<void> {
    await tx.query(
      `INSERT INTO tx_attempts (hash, sender, nonce, max_fee_per_gas, max_priority_fee_per_gas, raw, created_at_ms)
       VALUES ($1, $7, $2, $3, $4, $5, $6) ON CONFLICT (hash) DO NOTHING`,
      [hash, nonce, fees.maxFeePerGas.toString(), fees.maxPriorityFeePerGas.toString(), raw, now, this.sender],
    );
  }

  /** Sends a stored raw transaction; node answers that mean "fine" or "handled later" are not errors. */
  private async broadcast(nonce: number, hash: string, raw: string): Promise<void> {
    try {
      await this.rpc.sendRawTransaction(raw);
      this.refusedForFunds.delete(nonce);
    } catch (err) {
      const kind = classifyRpcError(err);
      const context = { nonce, hash, kind, error: (err as Error).message };
      if (kind !== "insufficient-funds") this.refusedForFunds.delete(nonce);
      if (kind === "already-known") return;
      if (kind === "nonce-too-low")
        this.logger.info(context, "nonce already used on chain: checking which version mined");
      else if (kind === "underpriced")
        this.logger.warn(context, "node refused the fees: the next replacement bumps them");
      else if (kind === "insufficient-funds") {
        this.refusedForFunds.add(nonce);
        if (this.now() - this.lastFundsWarningAt >= FUNDS_WARNING_EVERY_MS) {
          this.lastFundsWarningAt = this.now();
          this.logger.warn(
            { ...context, operator: this.signer.address },
            "operator cannot pay for gas: fund the operator account (charges resume by themselves once funded)",
          );
        }
      } else {
        if (/nonce too high/i.test(context.error)) this.hooks.onNonceTooHigh?.();
        this.logger.warn(context, "broadcast failed: will retry");
      }
    }
  }

  /**
   * Follows every open transaction: records receipts, finalizes them after the confirmations, notices reorged-out
   * and superseded ones, replaces stuck ones and re-sends ones the node forgot. `rebroadcast` re-sends every
   * unmined transaction (after a restart).
   */
  async tick(options: { rebroadcast?: boolean } = {}): Promise<void> {
    const chainNonce = await this.rpc.getTransactionCount(this.signer.address, "latest");
    const head = await this.rpc.blockNumber();
    await this.reopenReorgedFinals(chainNonce);

    // Calldata and raw bytes (tens of KiB per batch) stay in the store unless a transaction is sent again.
    const open = await this.db.query<TxRow>(
      `SELECT nonce, state, subscription_ids, created_at_ms, last_sent_at_ms, mined_hash, block_number, block_hash
       FROM txs WHERE sender = $1 AND state IN ('pending', 'mined') ORDER BY nonce`,
      [this.sender],
    );
    // Every open transaction's versions in one query, their receipts looked up in parallel.
    const attemptRows = await this.db.query<AttemptRow & { nonce: unknown }>(
      `SELECT nonce, hash, max_fee_per_gas, max_priority_fee_per_gas FROM tx_attempts
       WHERE sender = $1 AND nonce = ANY($2::text[]::bigint[]) ORDER BY created_at_ms DESC, hash`,
      [this.sender, open.map((row) => String(row.nonce))],
    );
    const attemptsOf = new Map<number, AttemptRow[]>();
    for (const attempt of attemptRows) {
      const list = attemptsOf.get(toNumber(attempt.nonce)) ?? [];
      list.push(attempt);
      attemptsOf.set(toNumber(attempt.nonce), list);
    }
    const receipts = await mapLimit(open, 8, async (row) =>
      (await this.stillMinedUnconfirmed(row, head))
        ? "unchanged"
        : this.findReceipt((attemptsOf.get(toNumber(row.nonce)) ?? []).map((a) => a.hash)),
    );
    for (const [i, row] of open.entries()) {
      const nonce = toNumber(row.nonce);
      const attempts = attemptsOf.get(nonce) ?? [];
      if (attempts.length === 0) continue;
      const receipt = receipts[i];
      if (receipt === "unchanged") continue;
      if (receipt !== null) {
        await this.onReceipt(row, nonce, receipt, head);
        continue;
      }
      if (row.state === "mined") {
        this.logger.warn({ nonce, hash: row.mined_hash }, "mined transaction left the chain (reorg): back to pending");
        await this.db.query(
          "UPDATE txs SET state = 'pending', mined_hash = NULL, block_number = NULL, block_hash = NULL, receipt_status = NULL WHERE sender = $2 AND nonce = $1",
          [nonce, this.sender],
        );
      }
      if (nonce < chainNonce) {
        // The nonce is used on chain but by none of our versions: another sender used this key.
        this.logger.error(
          { nonce },
          "nonce used by a transaction this keeper did not sign: is the key used elsewhere?",
        );
        await this.db.query(
          "UPDATE txs SET state = 'superseded', note = 'nonce used by another transaction' WHERE sender = $2 AND nonce = $1",
          [nonce, this.sender],
        );
        continue;
      }
      const latest = attempts[0];
      const age = this.now() - toNumber(row.last_sent_at_ms);
      if (this.refusedForFunds.has(nonce)) {
        await this.broadcast(nonce, latest.hash, await this.rawOf(latest.hash));
      } else if (nonce === chainNonce && age >= this.options.replaceAfterMs) {
        await this.replace(row, nonce, latest);
      } else if (options.rebroadcast || !(await this.rpc.hasTransaction(latest.hash))) {
        await this.broadcast(nonce, latest.hash, await this.rawOf(latest.hash));
      }
    }
    await this.reportPending();
  }

  /**
   * A mined transaction short of its confirmations whose block is still the chain's: nothing to do this tick. Its
   * receipt (hundreds of logs for a full batch) is read again only when it may be final or its block changed.
   */
  private async stillMinedUnconfirmed(row: TxRow, head: number): Promise<boolean> {
    if (row.state !== "mined" || row.block_hash === null || row.block_number === null) return false;
    const blockNumber = toNumber(row.block_number);
    if (head - blockNumber + 1 >= this.options.confirmations) return false;
    const block = await this.rpc.findBlock(blockNumber);
    return block !== null && block.hash === row.block_hash;
  }

  /** The raw bytes of a signed version, to send again. */
  private async rawOf(hash: string): Promise<string> {
    const [row] = await this.db.query<{ raw: string }>("SELECT raw FROM tx_attempts WHERE sender = $1 AND hash = $2", [
      this.sender,
      hash,
    ]);
    if (row === undefined) throw new Error(`no stored transaction ${hash}`);
    return row.raw;
  }

  private async findReceipt(hashes: string[]): Promise<RpcReceipt | null> {
    for (const hash of hashes) {
      const receipt = await this.rpc.getTransactionReceipt(hash);
      if (receipt !== null) return receipt;
    }
    return null;
  }

  private async onReceipt(row: TxRow, nonce: number, receipt: RpcReceipt, head: number): Promise<void> {
    if (row.state !== "mined" || row.mined_hash !== receipt.transactionHash) {
      await this.db.query(
        "UPDATE txs SET state = 'mined', mined_hash = $2, block_number = $3, block_hash = $4, receipt_status = $5 WHERE sender = $6 AND nonce = $1",
        [nonce, receipt.transactionHash, receipt.blockNumber, receipt.blockHash, receipt.status, this.sender],
      );
      this.logger.info(
        { nonce, hash: receipt.transactionHash, block: receipt.blockNumber, status: receipt.status },
        "transaction mined",
      );
    }
    if (head - receipt.blockNumber + 1 < this.options.confirmations) return;
    const block = await this.rpc.findBlock(receipt.blockNumber);
    if (block === null || block.hash !== receipt.blockHash) return; // reorg in progress: look again next tick
    const state: TxState = receipt.status === 1 ? "confirmed" : "failed";
    const subscriptionIds = row.subscription_ids.map(toBigInt);
    await this.db.query("UPDATE txs SET state = $2 WHERE sender = $3 AND nonce = $1", [nonce, state, this.sender]);
    this.logger.info({ nonce, hash: receipt.transactionHash, block: receipt.blockNumber, state }, "transaction final");
    await this.hooks.onFinal?.({ nonce, subscriptionIds }, receipt);
  }

  /** Final transactions whose nonce the chain no longer counts were removed by a reorg deeper than the confirmations. */
  private async reopenReorgedFinals(chainNonce: number): Promise<void> {
    const finals = await this.db.query<{ nonce: unknown; mined_hash: string }>(
      "SELECT nonce, mined_hash FROM txs WHERE sender = $2 AND state IN ('confirmed', 'failed') AND nonce >= $1 ORDER BY nonce",
      [chainNonce, this.sender],
    );
    for (const row of finals) {
      if ((await this.rpc.getTransactionReceipt(row.mined_hash)) !== null) continue;
      this.logger.warn(
        { nonce: toNumber(row.nonce), hash: row.mined_hash },
        "final transaction left the chain (deep reorg): resending",
      );
      await this.db.query(
        "UPDATE txs SET state = 'pending', mined_hash = NULL, block_number = NULL, block_hash = NULL, receipt_status = NULL, last_sent_at_ms = $2 WHERE sender = $3 AND nonce = $1",
        [row.nonce, this.now(), this.sender],
      );
    }
  }

  private async replace(row: TxRow, nonce: number, latest: AttemptRow): Promise<void> {
    const market = (await this.marketFees()) ?? {
      maxFeePerGas: this.options.maxFeePerGas,
      maxPriorityFeePerGas: this.options.maxPriorityFeePerGas,
    };
    const old = {
      maxFeePerGas: toBigInt(latest.max_fee_per_gas),
      maxPriorityFeePerGas: toBigInt(latest.max_priority_fee_per_gas),
    };
    const fees = bumpFees(old, market, this.options.bumpPercent);
    // Nodes need >= 10% on both fields; past the caps a replacement would only be refused.
    const minimum = bumpFees(old, { maxFeePerGas: 0n, maxPriorityFeePerGas: 0n }, 10);
    if (fees.maxFeePerGas > this.options.maxFeePerGas) fees.maxFeePerGas = this.options.maxFeePerGas;
    if (fees.maxPriorityFeePerGas > this.options.maxPriorityFeePerGas)
      fees.maxPriorityFeePerGas = this.options.maxPriorityFeePerGas;
    if (fees.maxPriorityFeePerGas > fees.maxFeePerGas) fees.maxPriorityFeePerGas = fees.maxFeePerGas;
    const now = this.now();
    if (fees.maxFeePerGas < minimum.maxFeePerGas || fees.maxPriorityFeePerGas < minimum.maxPriorityFeePerGas) {
      this.logger.warn({ nonce, hash: latest.hash }, "stuck transaction is at the fee cap: re-sending without a bump");
      await this.db.query("UPDATE txs SET last_sent_at_ms = $2 WHERE sender = $3 AND nonce = $1", [
        nonce,
        now,
        this.sender,
      ]);
      await this.broadcast(nonce, latest.hash, await this.rawOf(latest.hash));
      return;
    }
    const [call] = await this.db.query<{ to_address: string; data: string; gas_limit: unknown }>(
      "SELECT to_address, data, gas_limit FROM txs WHERE sender = $1 AND nonce = $2",
      [this.sender, nonce],
    );
    const raw = await this.signer.signTransaction({
      type: 2,
      chainId: BigInt(this.options.chainId),
      nonce,
      to: call.to_address,
      data: call.data,
      value: 0n,
      gasLimit: toBigInt(call.gas_limit),
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    });
    const hash = Transaction.from(raw).hash as string;
    await this.db.transaction(async (tx) => {
      await this.insertAttempt(tx, nonce, hash, raw, fees, now);
      await tx.query("UPDATE txs SET last_sent_at_ms = $2 WHERE sender = $3 AND nonce = $1", [nonce, now, this.sender]);
    });
    this.logger.warn(
      {
        nonce,
        replaced: latest.hash,
        hash,
        maxFeePerGas: fees.maxFeePerGas.toString(),
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString(),
      },
      "stuck transaction replaced with higher fees",
    );
    this.hooks.onReplaced?.({ nonce, hash });
    await this.broadcast(nonce, hash, raw);
  }

  private async reportPending(): Promise<void> {
    const rows = await this.db.query<{ n: unknown; oldest: unknown }>(
      "SELECT count(*) AS n, min(created_at_ms) AS oldest FROM txs WHERE sender = $1 AND state IN ('pending', 'mined')",
      [this.sender],
    );
    const count = toNumber(rows[0].n);
    const oldest = rows[0].oldest === null ? 0 : Math.max(0, (this.now() - toNumber(rows[0].oldest)) / 1000);
    this.hooks.onPending?.(count, oldest);
  }
}
