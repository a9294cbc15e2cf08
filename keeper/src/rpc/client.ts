// Typed JSON-RPC calls the keeper makes, over one or several endpoints. Every answer is shape-checked and checked
// against the request (the block number or hash asked for, the log range and address); a wrong or malformed answer is
// a provider fault: retried (on another endpoint when there is one), never used. Rate limits are waited out for
// their Retry-After (capped) or with jittered exponential back-off; a signed transaction goes to every endpoint.
import { z } from "zod";

import { type EndpointOptions, EndpointPool, type Endpoint } from "./endpoints.js";
import { RpcError, type RpcErrorKind } from "./errors.js";
import { type Eip1193Provider, HttpTransport, ProviderTransport, redactUrl, type Transport } from "./transport.js";

const hex = z.string().regex(/^0x[0-9a-fA-F]*$/, "a 0x-prefixed hex string");
const hash32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "a 32-byte hash");
const quantity = hex.transform((value) => BigInt(value === "0x" ? 0 : value));

const blockSchema = z.object({
  number: quantity,
  hash: hash32,
  parentHash: hash32,
  timestamp: quantity,
  baseFeePerGas: quantity.optional(),
  logsBloom: z
    .string()
    .regex(/^0x[0-9a-fA-F]{512}$/, "a 256-byte bloom")
    .optional(),
});
export type BlockHeader = {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: bigint;
  baseFeePerGas?: bigint;
  /** The header's 2048-bit log bloom (0x + 512 hex digits), when the node sent it. */
  logsBloom?: string;
};

const logSchema = z.object({
  address: hex,
  topics: z.array(hash32),
  data: hex,
  blockNumber: quantity,
  blockHash: hash32,
  transactionHash: hash32,
  logIndex: quantity,
  removed: z.boolean().optional(),
});
export interface RpcLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  logIndex: number;
}

const receiptSchema = z.object({
  transactionHash: hash32,
  blockNumber: quantity,
  blockHash: hash32,
  status: quantity,
  gasUsed: quantity,
  effectiveGasPrice: quantity.optional(),
  logs: z.array(logSchema),
});
export interface RpcReceipt {
  transactionHash: string;
  blockNumber: number;
  blockHash: string;
  status: number;
  gasUsed: bigint;
  logs: RpcLog[];
}

const toLog = (log: z.infer<typeof logSchema>): RpcLog => ({
  address: log.address.toLowerCase(),
  topics: log.topics,
  data: log.data,
  blockNumber: Number(log.blockNumber),
  blockHash: log.blockHash,
  transactionHash: log.transactionHash,
  logIndex: Number(log.logIndex),
});

export interface RpcClientOptions extends EndpointOptions {
  /** Per-request timeout for HTTP. [10000] */
  timeoutMs?: number;
  /** Extra attempts for a transient failure. [2] */
  retries?: number;
  /** [30000] the longest Retry-After honoured (and the longest rate-limit back-off). */
  maxRetryAfterMs?: number;
  /** Called on every failed call, for metrics. */
  onError?: (method: string, kind: RpcErrorKind) => void;
  /** Called on every request an endpoint answered or failed, for per-endpoint metrics. */
  onRequest?: (endpoint: string, method: string, latencyMs: number, kind?: RpcErrorKind) => void;
}

export type BlockTag = number | "latest" | "pending" | "safe" | "finalized";
const tag = (block: BlockTag) => (typeof block === "number" ? `0x${block.toString(16)}` : block);
export const toHex = (value: bigint | number) => `0x${value.toString(16)}`;

/** Kinds worth another attempt: the endpoint (not the request) failed. */
const TRANSIENT: ReadonlySet<RpcErrorKind> = new Set(["unreachable", "other", "malformed", "rate-limited", "timeout"]);
/** Attempts a rate-limited call gets beyond `retries`, so a provider's short window is waited out, not failed. */
const RATE_LIMIT_EXTRA_ATTEMPTS = 3;
/** Background attempts to give a signed transaction to an endpoint that missed its broadcast. */
const REBROADCAST_ATTEMPTS = 3;

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
async function mapLimitInternal<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]);
    }
  });
  await Promise.all(workers);
  return results;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const toHeader = (b: z.infer<typeof blockSchema>): BlockHeader => ({
  number: Number(b.number),
  hash: b.hash,
  parentHash: b.parentHash,
  timestamp: b.timestamp,
  baseFeePerGas: b.baseFeePerGas,
  logsBloom: b.logsBloom,
});

/** Typed JSON-RPC calls the keeper makes. */
export class RpcClient {
  readonly pool: EndpointPool;
  /** The endpoint that answered the last call of each method (to set it aside when its answer proves wrong). */
  private readonly answeredBy = new Map<string, Endpoint>();
  /** Whether the nodes serve eth_getBlockReceipts (undefined until tried). */
  private blockReceipts?: boolean;

  constructor(
    endpoint: string | readonly string[] | Eip1193Provider,
    private readonly options: RpcClientOptions = {},
  ) {
    const urls = typeof endpoint === "string" ? [endpoint] : Array.isArray(endpoint) ? (endpoint as string[]) : [];
    // Several endpoints may share a host (two API keys): their labels carry their position in the list.
    const transports: Transport[] =
      urls.length > 0
        ? urls.map(
            (url, i) =>
              new HttpTransport(url, {
                timeoutMs: options.timeoutMs,
                maxRetryAfterMs: options.maxRetryAfterMs,
                label: urls.length > 1 ? `#${i} ${redactUrl(url)}` : undefined,
              }),
          )
        : [new ProviderTransport(endpoint as Eip1193Provider)];
    this.pool = new EndpointPool(transports, options);
  }

  /**
   * Raw call; throws a classified {@link RpcError}. Transient failures (a dropped connection, an internal node error,
   * a garbled or crossed answer, a rate limit, a timeout except on eth_getLogs, whose range must shrink instead) are
   * retried, on another endpoint when there is one.
   */
  async request(method: string, params: unknown[] = []): Promise<unknown> {
    return this.withRetry(method, (endpoint) => this.requestOnce(endpoint, method, params));
  }

  /** A call whose answer must match `schema` and pass `check`; a failing answer is retried like a transient fault. */
  private async get<T extends z.ZodTypeAny>(
    method: string,
    params: unknown[],
    schema: T,
    check?: (value: z.infer<T>) => string | undefined,
  ): Promise<z.infer<T>> {
    return this.withRetry(method, async (endpoint) => {
      const value = this.parse(method, schema, await this.requestOnce(endpoint, method, params));
      const problem = check?.(value);
      if (problem !== undefined)
        throw this.fault(endpoint, method, `${method}: wrong answer from ${endpoint.label}: ${problem}`);
      return value;
    });
  }

  private fault(endpoint: Endpoint, method: string, message: string): RpcError {
    const error = new RpcError(message, method, "malformed");
    this.pool.failed(endpoint, "malformed");
    this.options.onError?.(method, "malformed");
    this.options.onRequest?.(endpoint.label, method, 0, "malformed");
    return error;
  }

  private async withRetry<T>(method: string, fn: (endpoint: Endpoint) => Promise<T>): Promise<T> {
    const retries = this.options.retries ?? 2;
    const tried = new Set<Endpoint>();
    for (let attempt = 0; ; attempt++) {
      let endpoint = this.pool.pick(tried);
      if (endpoint === undefined) {
        tried.clear();
        endpoint = this.pool.pick() as Endpoint;
      }
      // An endpoint that asked for a pause (Retry-After) gets no request before it ends, not even a first attempt.
      const wait = endpoint.pausedUntil - Date.now();
      if (wait > 0) await sleep(Math.min(wait, this.options.maxRetryAfterMs ?? 30_000));
      try {
        const value = await fn(endpoint);
        this.answeredBy.set(method, endpoint);
        return value;
      } catch (err) {
        const error = err as RpcError;
        tried.add(endpoint);
        const transient = TRANSIENT.has(error.kind) && !(error.kind === "timeout" && method === "eth_getLogs");
        const limit = retries + (error.kind === "rate-limited" ? RATE_LIMIT_EXTRA_ATTEMPTS : 0) + this.pool.size - 1;
        if (!transient || attempt >= limit) throw error;
        // A rate limit paused the endpoint (pool.failed): the wait happens before its next request.
        if (error.kind !== "rate-limited") await sleep(50 * (attempt + 1));
      }
    }
  }

  private async requestOnce(endpoint: Endpoint, method: string, params: unknown[]): Promise<unknown> {
    const started = Date.now();
    try {
      const result = await endpoint.transport.request(method, params);
      this.pool.succeeded(endpoint, Date.now() - started);
      this.options.onRequest?.(endpoint.label, method, Date.now() - started);
      return result;
    } catch (err) {
      const error = err instanceof RpcError ? err : new RpcError(`${method} failed: ${String(err)}`, method, "other");
      this.pool.failed(endpoint, error.kind, error.retryAfterMs);
      this.options.onError?.(method, error.kind);
      this.options.onRequest?.(endpoint.label, method, Date.now() - started, error.kind);
      throw error;
    }
  }

  private parse<T extends z.ZodTypeAny>(method: string, schema: T, value: unknown): z.infer<T> {
    const result = schema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue.path.length ? ` at ${issue.path.join(".")}` : "";
      const error = new RpcError(
        `${method}: malformed answer${where}: expected ${issue.message}, got ${JSON.stringify(value)?.slice(0, 200)}`,
        method,
        "malformed",
      );
      this.options.onError?.(method, "malformed");
      throw error;
    }
    return result.data;
  }

  /** Sets aside the endpoint that answered the last `method` call: its answer proved inconsistent. */
  suspectLastAnswer(method: string): string | undefined {
    const endpoint = this.answeredBy.get(method);
    if (endpoint === undefined) return undefined;
    if (this.pool.size > 1) this.pool.suspect(endpoint);
    return endpoint.label;
  }

  /** One line describing every endpoint's health. */
  statusLine(): string {
    return this.pool.statusLine();
  }

  async chainId(): Promise<number> {
    return Number(await this.get("eth_chainId", [], quantity));
  }

  /** The chain id each endpoint serves (startup check: an endpoint on another chain must not be used). */
  async chainIds(): Promise<{ label: string; chainId: number | Error }[]> {
    return Promise.all(
      this.pool.endpoints.map(async (endpoint) => {
        try {
          return {
            label: endpoint.label,
            chainId: Number(this.parse("eth_chainId", quantity, await this.requestOnce(endpoint, "eth_chainId", []))),
          };
        } catch (err) {
          return { label: endpoint.label, chainId: err as Error };
        }
      }),
    );
  }

  /**
   * The head. With several endpoints, every one not set aside is asked (their heads show which ones lag) and the
   * best head is returned; the laggards are not used for reads until they catch up.
   */
  async blockNumber(): Promise<number> {
    if (this.pool.size === 1) {
      const head = Number(await this.get("eth_blockNumber", [], quantity));
      this.pool.endpoints[0].head = head;
      return head;
    }
    const asked = this.pool.endpoints.filter((e) => e.coolUntil <= Date.now());
    const heads = await Promise.all(
      (asked.length > 0 ? asked : this.pool.endpoints).map(async (endpoint) => {
        try {
          const head = Number(
            this.parse("eth_blockNumber", quantity, await this.requestOnce(endpoint, "eth_blockNumber", [])),
          );
          endpoint.head = head;
          return head;
        } catch {
          return undefined;
        }
      }),
    );
    const answered = heads.filter((h): h is number => h !== undefined);
    if (answered.length === 0) return Number(await this.get("eth_blockNumber", [], quantity));
    return Math.max(...answered);
  }

  /** The best head any endpoint reported so far (null before the first answer). */
  bestKnownHead(): number | null {
    return this.pool.bestHead();
  }

  /**
   * A block header that must exist; an endpoint without it (behind the others) is a wrong answer, asked again
   * elsewhere before the call fails.
   */
  async getBlock(block: BlockTag): Promise<BlockHeader> {
    return (await this.readBlock(block, true)) as BlockHeader;
  }

  /** A block header, or null when the node has no such block (yet, or any more after a reorg). */
  async findBlock(block: BlockTag): Promise<BlockHeader | null> {
    return this.readBlock(block, false);
  }

  private async readBlock(block: BlockTag, required: boolean): Promise<BlockHeader | null> {
    const b = await this.get("eth_getBlockByNumber", [tag(block), false], blockSchema.nullable(), (value) => {
      if (value === null) return required ? `block ${block} not found` : undefined;
      return typeof block === "number" && Number(value.number) !== block
        ? `asked for block ${block}, got block ${value.number}`
        : undefined;
    });
    return b === null ? null : toHeader(b);
  }

  /** The block with this hash, or null when the node does not know it (it left the chain, or never was on it). */
  async findBlockByHash(hash: string): Promise<BlockHeader | null> {
    const b = await this.get("eth_getBlockByHash", [hash, false], blockSchema.nullable(), (value) =>
      value !== null && value.hash.toLowerCase() !== hash.toLowerCase()
        ? `asked for ${hash}, got ${value.hash}`
        : undefined,
    );
    return b === null ? null : toHeader(b);
  }

  async getLogs(filter: {
    address: string;
    fromBlock: number;
    toBlock: number;
    topics?: (string | string[] | null)[];
  }): Promise<RpcLog[]> {
    const address = filter.address.toLowerCase();
    const logs = await this.get(
      "eth_getLogs",
      [
        {
          address: filter.address,
          fromBlock: tag(filter.fromBlock),
          toBlock: tag(filter.toBlock),
          topics: filter.topics,
        },
      ],
      z.array(logSchema),
      (value) => {
        const stray = value.find(
          (log) =>
            log.address.toLowerCase() !== address ||
            Number(log.blockNumber) < filter.fromBlock ||
            Number(log.blockNumber) > filter.toBlock,
        );
        return stray === undefined
          ? undefined
          : `log of ${stray.address} in block ${stray.blockNumber} outside the filter (${address}, ${filter.fromBlock}..${filter.toBlock})`;
      },
    );
    return logs.filter((log) => !log.removed).map(toLog);
  }

  /**
   * The logs of `address` in block `blockHash` read from the block's receipts, not from the node's log index: an
   * independent check of an eth_getLogs answer. eth_getBlockReceipts where the node has it, else every receipt.
   * Throws (malformed) when a receipt is missing or belongs to another block: the node's view is not settled.
   */
  async logsFromReceipts(address: string, blockHash: string): Promise<RpcLog[]> {
    const wanted = address.toLowerCase();
    let receipts: z.infer<typeof receiptSchema>[] | undefined;
    if (this.blockReceipts !== false) {
      try {
        receipts = await this.get("eth_getBlockReceipts", [blockHash], z.array(receiptSchema));
        this.blockReceipts = true;
      } catch (err) {
        if (
          this.blockReceipts === true ||
          !/not supported|not found|does not exist|unknown method/i.test((err as Error).message)
        )
          throw err;
        this.blockReceipts = false;
      }
    }
    if (receipts === undefined) {
      const block = await this.get(
        "eth_getBlockByHash",
        [blockHash, false],
        z.object({ hash: hash32, transactions: z.array(hash32) }),
      );
      receipts = await mapLimitInternal(block.transactions, 8, async (hash) => {
        const receipt = await this.get("eth_getTransactionReceipt", [hash], receiptSchema.nullable());
        if (receipt === null)
          throw new RpcError(
            `receipt of ${hash} in block ${blockHash} missing`,
            "eth_getTransactionReceipt",
            "malformed",
          );
        return receipt;
      });
    }
    const stray = receipts.find((r) => r.blockHash.toLowerCase() !== blockHash.toLowerCase());
    if (stray)
      throw new RpcError(
        `receipt of ${stray.transactionHash} is not in block ${blockHash}`,
        "eth_getTransactionReceipt",
        "malformed",
      );
    return receipts.flatMap((r) => r.logs.map(toLog)).filter((log) => log.address === wanted);
  }

  async call(tx: { from?: string; to: string; data: string }, block: BlockTag = "latest"): Promise<string> {
    return this.get("eth_call", [tx, tag(block)], hex);
  }

  /**
   * `eth_estimateGas` on the latest block, named: nodes differ in their default (Hardhat and anvil simulate on the
   * pending block, which first executes every queued transaction: with the keeper's own batches queued, sizing a wave
   * of 5-15 batches of 434 charges took 2-7 s, on the latest block 0.3 s). Its queued batches charge other subscriptions.
   */
  async estimateGas(tx: { from: string; to: string; data: string }, block: BlockTag = "latest"): Promise<bigint> {
    return this.get("eth_estimateGas", [tx, tag(block)], quantity);
  }

  async getTransactionCount(address: string, block: BlockTag = "latest"): Promise<number> {
    return Number(await this.get("eth_getTransactionCount", [address, tag(block)], quantity));
  }

  async getBalance(address: string): Promise<bigint> {
    return this.get("eth_getBalance", [address, "latest"], quantity);
  }

  async getCode(address: string): Promise<string> {
    return this.get("eth_getCode", [address, "latest"], hex);
  }

  async maxPriorityFeePerGas(): Promise<bigint> {
    return this.get("eth_maxPriorityFeePerGas", [], quantity);
  }

  /**
   * Broadcasts to every endpoint (a transaction one provider drops still reaches the chain). Succeeds when one
   * accepted it; otherwise throws the most telling refusal (a node's verdict on the transaction before a fault).
   */
  async sendRawTransaction(raw: string): Promise<string> {
    if (this.pool.size === 1) return this.get("eth_sendRawTransaction", [raw], hash32);
    const outcomes = await Promise.all(
      this.pool.endpoints.map(async (endpoint) => {
        try {
          return this.parse(
            "eth_sendRawTransaction",
            hash32,
            await this.requestOnce(endpoint, "eth_sendRawTransaction", [raw]),
          );
        } catch (err) {
          return err as RpcError;
        }
      }),
    );
    // Every endpoint should hold the transaction (the one that mines it may be any): one that was rate-limited,
    // unreachable or slow gets it again in the background once its pause is over, whatever the others answered (when
    // none accepted, the retry below reaches only one of them).
    outcomes.forEach((outcome, index) => {
      if (outcome instanceof RpcError && TRANSIENT.has(outcome.kind)) {
        void this.rebroadcast(this.pool.endpoints[index], raw);
      }
    });
    const accepted = outcomes.find((o): o is string => typeof o === "string");
    if (accepted !== undefined) return accepted;
    const errors = outcomes as RpcError[];
    const verdict = errors.find((e) => !TRANSIENT.has(e.kind));
    if (verdict) throw verdict;
    return this.get("eth_sendRawTransaction", [raw], hash32);
  }

  /** Sends `raw` to one endpoint again, a few times, after its pause; gives up quietly (it is a copy, not the send). */
  private async rebroadcast(endpoint: Endpoint, raw: string): Promise<void> {
    for (let attempt = 1; attempt <= REBROADCAST_ATTEMPTS; attempt++) {
      const wait = Math.max(endpoint.pausedUntil - Date.now(), 300 * attempt);
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
      try {
        await this.requestOnce(endpoint, "eth_sendRawTransaction", [raw]);
        return;
      } catch (err) {
        if (!(err instanceof RpcError) || !TRANSIENT.has(err.kind)) return;
      }
    }
  }

  /** The receipt, or null while the transaction is not mined. */
  async getTransactionReceipt(hash: string): Promise<RpcReceipt | null> {
    const r = await this.get("eth_getTransactionReceipt", [hash], receiptSchema.nullable(), (value) =>
      value !== null && value.transactionHash.toLowerCase() !== hash.toLowerCase()
        ? `asked for the receipt of ${hash}, got ${value.transactionHash}`
        : undefined,
    );
    if (r === null) return null;
    return {
      transactionHash: r.transactionHash,
      blockNumber: Number(r.blockNumber),
      blockHash: r.blockHash,
      status: Number(r.status),
      gasUsed: r.gasUsed,
      logs: r.logs.map(toLog),
    };
  }

  /** Whether the node knows the transaction (mempool or chain). */
  async hasTransaction(hash: string): Promise<boolean> {
    return (await this.request("eth_getTransactionByHash", [hash])) !== null;
  }
}
