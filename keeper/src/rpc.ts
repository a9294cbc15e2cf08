// JSON-RPC client for the keeper: one small surface over HTTP (with timeouts) or an in-process EIP-1193 provider,
// every answer shape-checked, every failure classified so callers can react (shrink a log range, bump a fee, ...).
import { z } from "zod";

/** What a failed call means to the keeper. */
export type RpcErrorKind =
  | "too-many-results"
  | "timeout"
  | "unreachable"
  | "nonce-too-low"
  | "already-known"
  | "underpriced"
  | "insufficient-funds"
  | "reverted"
  | "malformed"
  | "other";

/** A failed JSON-RPC call, already classified. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly method: string,
    readonly kind: RpcErrorKind,
    readonly code?: number,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

// Ordered: the first pattern that matches wins. Messages from geth, erigon, nethermind, besu, reth, anvil/hardhat,
// Alchemy, Infura, QuickNode and others; matched case-insensitively because providers disagree on case.
const PATTERNS: readonly [RpcErrorKind, RegExp][] = [
  [
    "too-many-results",
    /query returned more than|block range (is )?too (wide|large)|response size (exceeded|should not)|log response size exceeded|too many (results|logs|blocks)|exceed(s|ed)? max(imum)? (results|block range|logs)|limit exceeded|range (is )?too large|please limit the query|query timeout exceeded|returned too many|more than \d+ (results|logs)|block range extends beyond|ranges over \d+ blocks/i,
  ],
  ["nonce-too-low", /nonce too low|nonce has already been used|oldnonce|nonce is too low|invalid nonce.*lower/i],
  [
    "already-known",
    /already known|known transaction|already imported|alreadyknown|already in (the )?(mem)?pool|transaction already exists/i,
  ],
  [
    "underpriced",
    /replacement transaction underpriced|transaction underpriced|replacement fee too low|fee too low|gas price too low|max fee per gas less than block base fee|feecap.*too low|underpriced/i,
  ],
  ["insufficient-funds", /insufficient funds|insufficient balance|sender doesn't have enough funds/i],
  ["reverted", /execution reverted|reverted|revert|vm exception|invalid opcode|out of gas|gas required exceeds/i],
  ["timeout", /timeout|timed out|aborted|deadline exceeded|gateway time-?out|ETIMEDOUT/i],
  [
    "unreachable",
    /ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|EPIPE|fetch failed|socket hang up|network error|other side closed|bad gateway|service unavailable/i,
  ],
];

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? ` ${cause.message} ${(cause as { code?: string }).code ?? ""}` : "";
    const data = (err as { data?: unknown }).data;
    const dataText = typeof data === "string" ? ` ${data}` : "";
    return `${err.message}${causeText}${dataText}`;
  }
  if (typeof err === "string") return err;
  if (err && typeof err === "object" && "message" in err) return String((err as { message: unknown }).message);
  return String(err);
}

/** Classifies a node or transport error by its message (case-insensitive) and JSON-RPC code. */
export function classifyRpcError(err: unknown): RpcErrorKind {
  if (err instanceof RpcError && err.kind !== "other") return err.kind;
  const message = messageOf(err);
  for (const [kind, pattern] of PATTERNS) if (pattern.test(message)) return kind;
  const code = (err as { code?: unknown })?.code;
  // -32005 is the de-facto "limit exceeded" code (Infura, Nethermind); 3 is geth's "execution reverted".
  if (code === -32005) return "too-many-results";
  if (code === 3) return "reverted";
  return "other";
}

/**
 * A block range the provider suggested in its error ("this block range should work: [0x0, 0x1f3]",
 * "Try with this block range [0x10, 0x20]"), or undefined.
 */
export function suggestedRange(err: unknown): { from: number; to: number } | undefined {
  const match = /\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]/i.exec(messageOf(err));
  if (!match) return undefined;
  const from = Number.parseInt(match[1], 16);
  const to = Number.parseInt(match[2], 16);
  return to >= from ? { from, to } : undefined;
}

/** Minimal EIP-1193 surface, as Hardhat's `network.create()` provider and browser wallets offer. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>;
}

const hex = z.string().regex(/^0x[0-9a-fA-F]*$/, "a 0x-prefixed hex string");
const hash32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "a 32-byte hash");
const quantity = hex.transform((value) => BigInt(value === "0x" ? 0 : value));

const blockSchema = z.object({
  number: quantity,
  hash: hash32,
  parentHash: hash32,
  timestamp: quantity,
  baseFeePerGas: quantity.optional(),
});
export type BlockHeader = {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: bigint;
  baseFeePerGas?: bigint;
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

export interface RpcClientOptions {
  /** Per-request timeout for HTTP. [10000] */
  timeoutMs?: number;
  /** Extra attempts for a transient failure. [2] */
  retries?: number;
  /** Called on every failed call, for metrics. */
  onError?: (method: string, kind: RpcErrorKind) => void;
}

export type BlockTag = number | "latest" | "pending" | "safe" | "finalized";
const tag = (block: BlockTag) => (typeof block === "number" ? `0x${block.toString(16)}` : block);
const toHex = (value: bigint | number) => `0x${value.toString(16)}`;

/** Typed JSON-RPC calls the keeper makes. */
export class RpcClient {
  private nextId = 1;
  private readonly timeoutMs: number;

  constructor(
    private readonly endpoint: string | Eip1193Provider,
    private readonly options: RpcClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * Raw call; throws a classified {@link RpcError}. Transient failures (a dropped connection, an internal node error,
   * a garbled answer, a timeout except on eth_getLogs, whose range must shrink instead) are retried a few times, so
   * one flaky answer does not cost the caller a whole loop iteration.
   */
  async request(method: string, params: unknown[] = []): Promise<unknown> {
    return this.withRetry(method, () => this.requestOnce(method, params));
  }

  /** A call whose answer must match `schema`; a malformed answer is retried like a transient failure. */
  private async get<T extends z.ZodTypeAny>(method: string, params: unknown[], schema: T): Promise<z.infer<T>> {
    return this.withRetry(method, async () => this.parse(method, schema, await this.requestOnce(method, params)));
  }

  private async withRetry<T>(method: string, fn: () => Promise<T>): Promise<T> {
    const retries = this.options.retries ?? 2;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const error = err as RpcError;
        const transient =
          error.kind === "unreachable" ||
          error.kind === "other" ||
          error.kind === "malformed" ||
          (error.kind === "timeout" && method !== "eth_getLogs");
        if (!transient || attempt >= retries) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
      }
    }
  }

  private async requestOnce(method: string, params: unknown[]): Promise<unknown> {
    try {
      return typeof this.endpoint === "string"
        ? await this.httpRequest(this.endpoint, method, params)
        : await this.endpoint.request({ method, params });
    } catch (err) {
      const error =
        err instanceof RpcError
          ? err
          : new RpcError(
              `${method} failed: ${messageOf(err)}`,
              method,
              classifyRpcError(err),
              typeof (err as { code?: unknown })?.code === "number" ? (err as { code: number }).code : undefined,
              (err as { data?: unknown })?.data,
            );
      this.options.onError?.(method, error.kind);
      throw error;
    }
  }

  private async httpRequest(url: string, method: string, params: unknown[]): Promise<unknown> {
    const id = this.nextId++;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const kind = (err as Error).name === "TimeoutError" ? "timeout" : classifyRpcError(err);
      throw new RpcError(
        `${method} to ${redactUrl(url)} failed: ${messageOf(err)}`,
        method,
        kind === "other" ? "unreachable" : kind,
      );
    }
    const text = await response.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const snippet = text.slice(0, 200);
      const kind = response.status === 504 || response.status === 408 ? "timeout" : classifyRpcError(snippet);
      throw new RpcError(
        `${method}: HTTP ${response.status} with a non-JSON body: ${JSON.stringify(snippet)}`,
        method,
        kind === "other" ? "malformed" : kind,
      );
    }
    const parsed = z
      .object({
        result: z.unknown().optional(),
        error: z.object({ code: z.number(), message: z.string(), data: z.unknown() }).partial().optional(),
      })
      .safeParse(body);
    if (!parsed.success || Array.isArray(body)) {
      throw new RpcError(`${method}: malformed JSON-RPC response: ${text.slice(0, 200)}`, method, "malformed");
    }
    const { result, error } = parsed.data;
    if (error) {
      const message = `${method}: ${error.message ?? "unknown error"}${typeof error.data === "string" ? ` (${error.data})` : ""}`;
      throw new RpcError(message, method, classifyRpcError({ message, code: error.code }), error.code, error.data);
    }
    if (!("result" in (body as object))) {
      throw new RpcError(`${method}: JSON-RPC response has neither result nor error`, method, "malformed");
    }
    if (!response.ok) throw new RpcError(`${method}: HTTP ${response.status}`, method, "other");
    return result;
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

  async chainId(): Promise<number> {
    return Number(await this.get("eth_chainId", [], quantity));
  }

  async blockNumber(): Promise<number> {
    return Number(await this.get("eth_blockNumber", [], quantity));
  }

  /** A block header; throws when the node does not know the block. */
  async getBlock(block: BlockTag): Promise<BlockHeader> {
    const header = await this.findBlock(block);
    if (header === null)
      throw new RpcError(`eth_getBlockByNumber: block ${block} not found`, "eth_getBlockByNumber", "other");
    return header;
  }

  /** A block header, or null when the node has no such block (yet, or any more after a reorg). */
  async findBlock(block: BlockTag): Promise<BlockHeader | null> {
    const b = await this.get("eth_getBlockByNumber", [tag(block), false], blockSchema.nullable());
    if (b === null) return null;
    return {
      number: Number(b.number),
      hash: b.hash,
      parentHash: b.parentHash,
      timestamp: b.timestamp,
      baseFeePerGas: b.baseFeePerGas,
    };
  }

  async getLogs(filter: {
    address: string;
    fromBlock: number;
    toBlock: number;
    topics?: (string | string[] | null)[];
  }): Promise<RpcLog[]> {
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
    );
    return logs.filter((log) => !log.removed).map(toLog);
  }

  async call(tx: { from?: string; to: string; data: string }, block: BlockTag = "latest"): Promise<string> {
    return this.get("eth_call", [tx, tag(block)], hex);
  }

  async estimateGas(tx: { from: string; to: string; data: string }): Promise<bigint> {
    return this.get("eth_estimateGas", [tx], quantity);
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

  async sendRawTransaction(raw: string): Promise<string> {
    return this.get("eth_sendRawTransaction", [raw], hash32);
  }

  /** The receipt, or null while the transaction is not mined. */
  async getTransactionReceipt(hash: string): Promise<RpcReceipt | null> {
    const r = await this.get("eth_getTransactionReceipt", [hash], receiptSchema.nullable());
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

/** An RPC URL without credentials or API-key paths, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const keyLike = parsed.pathname.split("/").some((part) => part.length >= 20);
    return `${parsed.protocol}//${parsed.host}${keyLike ? "/<redacted>" : parsed.pathname === "/" ? "" : parsed.pathname}`;
  } catch {
    return "<invalid url>";
  }
}

export { toHex };

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(workers);
  return results;
}
