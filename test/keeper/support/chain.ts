// A local chain for process-level keeper tests and benchmarks: Hardhat's in-process EDR simulator behind a plain
// JSON-RPC HTTP server on 127.0.0.1, so the keeper (a child process) talks to it exactly as to a real node, while
// the test drives it directly (no HTTP) for setup, time travel, mining control and snapshots.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

import { network } from "hardhat";

/** Minimal EIP-1193 surface the harness needs. */
interface RequestProvider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

export interface ChainOptions {
  /** [31337] */
  chainId?: number;
  /** [30_000_000] a realistic mainnet-like limit, so "blocks used" means something. */
  blockGasLimit?: bigint;
  /** [true] mine a block per transaction. */
  automine?: boolean;
  /** [0] also mine a block every `intervalMs` (0: off). */
  intervalMs?: number;
}

interface JsonRpcRequest {
  jsonrpc: "2.0";
  id: number | string | null;
  method: string;
  params?: unknown[];
}

const toHex = (value: bigint | number) => `0x${BigInt(value).toString(16)}`;

/**
 * A running chain. `rpc` goes straight to the simulator; `url` is the HTTP endpoint for processes under test.
 * Every method that changes mining or time is a thin wrapper over the matching Hardhat JSON-RPC method.
 */
export class TestChain {
  /** Requests served over HTTP, by method (what processes under test asked for). */
  readonly served = new Map<string, number>();
  private automine: boolean;
  private intervalMs: number;

  private constructor(
    readonly url: string,
    readonly chainId: number,
    readonly blockGasLimit: bigint,
    private readonly provider: RequestProvider,
    private readonly server: http.Server,
    private readonly closeConnection: () => Promise<void>,
    mining: { automine: boolean; intervalMs: number },
  ) {
    this.automine = mining.automine;
    this.intervalMs = mining.intervalMs;
  }

  /** Starts a fresh chain and its HTTP endpoint on a free port of 127.0.0.1. */
  static async start(options: ChainOptions = {}): Promise<TestChain> {
    const chainId = options.chainId ?? 31337;
    const blockGasLimit = options.blockGasLimit ?? 30_000_000n;
    const mining = { automine: options.automine ?? true, intervalMs: options.intervalMs ?? 0 };
    const connection = await network.create({
      network: "default",
      override: {
        chainId,
        blockGasLimit,
        // Real nodes accept a raw transaction that will revert and only the receipt tells; so must this chain.
        throwOnTransactionFailures: false,
        throwOnCallFailures: true,
        // Interval mining is switched on below, over RPC: the config refuses sub-second intervals (timestamps then
        // run ahead of the wall clock, one second per block, which no test here minds).
        mining: { auto: mining.automine, interval: 0 },
      },
    });
    const provider = connection.provider as RequestProvider;
    const server = http.createServer();
    server.keepAliveTimeout = 60_000;
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const chain = new TestChain(
      `http://127.0.0.1:${port}`,
      chainId,
      blockGasLimit,
      provider,
      server,
      () => connection.close(),
      mining,
    );
    if (mining.intervalMs > 0) await chain.setIntervalMining(mining.intervalMs);
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      void serveHttp(provider, req, res, (method) => chain.count(method));
    });
    return chain;
  }

  private count(method: string) {
    this.served.set(method, (this.served.get(method) ?? 0) + 1);
  }

  /** Calls the simulator directly. */
  async rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    return (await this.provider.request({ method, params })) as T;
  }

  async blockNumber(): Promise<number> {
    return Number(await this.rpc<string>("eth_blockNumber"));
  }

  async latestTimestamp(): Promise<bigint> {
    const block = await this.rpc<{ timestamp: string }>("eth_getBlockByNumber", ["latest", false]);
    return BigInt(block.timestamp);
  }

  /**
   * Mines `blocks` blocks now (each takes pending transactions up to the block gas limit). One evm_mine per block:
   * EDR's hardhat_mine of many blocks creates "reserved" blocks that report a zero parentHash, which a reorg-aware
   * client rightly takes for a broken chain.
   */
  async mine(blocks = 1): Promise<void> {
    for (let i = 0; i < blocks; i++) await this.rpc("evm_mine");
  }

  /** Moves chain time forward by `seconds` and mines one block at the new time. */
  async warp(seconds: bigint | number): Promise<void> {
    await this.rpc("evm_increaseTime", [Number(seconds)]);
    await this.rpc("evm_mine");
  }

  async setAutomine(enabled: boolean): Promise<void> {
    await this.rpc("evm_setAutomine", [enabled]);
    this.automine = enabled;
  }

  /** 0 turns interval mining off. */
  async setIntervalMining(ms: number): Promise<void> {
    await this.rpc("evm_setIntervalMining", [ms]);
    this.intervalMs = ms;
  }

  /** Runs `fn` with automine and interval mining off (blocks only when `mine` is called), then restores them. */
  async withManualMining<T>(fn: () => Promise<T>): Promise<T> {
    const { automine, intervalMs } = this;
    if (automine) await this.setAutomine(false);
    if (intervalMs) await this.setIntervalMining(0);
    try {
      return await fn();
    } finally {
      if (intervalMs) await this.setIntervalMining(intervalMs);
      if (automine) await this.setAutomine(true);
    }
  }

  async setNextBlockBaseFee(wei: bigint): Promise<void> {
    await this.rpc("hardhat_setNextBlockBaseFeePerGas", [toHex(wei)]);
  }

  async dropTransaction(hash: string): Promise<boolean> {
    return this.rpc<boolean>("hardhat_dropTransaction", [hash]);
  }

  async setBalance(address: string, wei: bigint): Promise<void> {
    await this.rpc("hardhat_setBalance", [address, toHex(wei)]);
  }

  async impersonate(address: string): Promise<void> {
    await this.rpc("hardhat_impersonateAccount", [address]);
  }

  async snapshot(): Promise<string> {
    return this.rpc<string>("evm_snapshot");
  }

  /** Restores a snapshot; throws if the id is unknown (a revert that silently did nothing would hide bugs). */
  async revert(snapshotId: string): Promise<void> {
    if (!(await this.rpc<boolean>("evm_revert", [snapshotId]))) throw new Error(`unknown snapshot ${snapshotId}`);
  }

  /** Hashes of the transactions waiting in the mempool. */
  async pendingTransactionHashes(): Promise<string[]> {
    const block = await this.rpc<{ transactions: string[] }>("eth_getBlockByNumber", ["pending", false]);
    return block.transactions;
  }

  async nonce(address: string, tag: "latest" | "pending" = "latest"): Promise<number> {
    return Number(await this.rpc<string>("eth_getTransactionCount", [address, tag]));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.closeConnection();
  }
}

async function serveHttp(
  provider: RequestProvider,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  count: (method: string) => void,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    return send(res, { jsonrpc: "2.0", id: null, error: { code: -32700, message: `Parse error: ${String(error)}` } });
  }
  const handle = async (request: JsonRpcRequest) => {
    count(request.method);
    try {
      const result = await provider.request({ method: request.method, params: request.params ?? [] });
      return { jsonrpc: "2.0", id: request.id ?? null, result };
    } catch (error) {
      return { jsonrpc: "2.0", id: request.id ?? null, error: toJsonRpcError(error) };
    }
  };
  const response = Array.isArray(body)
    ? await Promise.all((body as JsonRpcRequest[]).map(handle))
    : await handle(body as JsonRpcRequest);
  send(res, response);
}

function send(res: http.ServerResponse, payload: unknown) {
  const text = JSON.stringify(payload);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Same shape as `hardhat node`: reverts (code 3) carry the raw revert data, other errors their message. */
function toJsonRpcError(error: unknown): { code: number; message: string; data?: unknown } {
  const err = error as { code?: unknown; message?: string; data?: unknown };
  const code = typeof err.code === "number" ? err.code : -32603;
  const nested = err.data as { data?: unknown } | undefined;
  const data = typeof err.data === "string" ? err.data : typeof nested?.data === "string" ? nested.data : undefined;
  return { code, message: err.message ?? String(error), ...(data === undefined ? {} : { data }) };
}
