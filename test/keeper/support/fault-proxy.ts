// A fault-injecting JSON-RPC proxy on 127.0.0.1. It forwards to a real node and, per a seeded random policy,
// answers with errors, stalls past the client's timeout, refuses wide eth_getLogs ranges the way hosted providers do,
// and drops the response of an eth_sendRawTransaction the node accepted (the client cannot tell it was sent).
// It also records every raw transaction it forwarded, so a test can prove nothing the keeper signed was lost.
// Provider faults seen in the wild: a log index behind the head (eth_getLogs answers [] for the newest blocks), answers
// crossed between requests (another request's id and result), rate limits (HTTP 429 with Retry-After, or JSON-RPC
// -32005), header reads with another hash (a node of another fork behind a load balancer; single or in bursts), and
// a whole endpoint some blocks behind the head.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

import { Transaction } from "ethers";

export interface FaultPolicy {
  /** Seed of the random decisions; print it so a failing run can be replayed. */
  seed: number;
  /** [0] probability that a request is answered with a JSON-RPC error instead of being forwarded. */
  errorRate?: number;
  /** [0] probability that a request is held for `stallMs` before it is forwarded (past the client timeout). */
  stallRate?: number;
  /** [5000] how long a stalled request is held. */
  stallMs?: number;
  /** [Infinity] eth_getLogs over more blocks than this is refused with "query returned more than 10000 results". */
  maxLogRange?: number;
  /** [0] probability that the response of an accepted eth_sendRawTransaction is dropped (connection destroyed). */
  dropSendRate?: number;
  /** [all] methods the random faults (error, stall, drop) apply to; the log range limit always applies. */
  methods?: readonly string[];
  /**
   * [none] gas cap on simulations (eth_call, eth_estimateGas), as nodes and providers cap them (geth's
   * --rpc.gascap): a call that needs more fails as it would on such a node.
   */
  simulationGasCap?: bigint;
  /** [0] eth_getLogs leaves out the logs of the newest `logLagBlocks` blocks (a log index behind its headers). */
  logLagBlocks?: number;
  /** [0] probability that a request is answered with the previous answer of the proxy (another request's id). */
  crossRate?: number;
  /** [0] probability that a request is refused as rate-limited. */
  rateLimitRate?: number;
  /** ["http-429"] how a rate limit is answered: HTTP 429 with Retry-After, or a JSON-RPC -32005 error. */
  rateLimitStyle?: "http-429" | "json-32005";
  /** [1] Retry-After of a 429, in seconds; every request inside that window is refused again and counted. */
  retryAfterSeconds?: number;
  /** [0] probability that an eth_getBlockByNumber answer carries another (random) block hash. */
  headerFlakeRate?: number;
  /** [0] the endpoint is this many blocks behind the node: head, headers and logs as of that height. */
  behindBlocks?: number;
}

/** What the proxy injected, by kind. */
export interface InjectedFaults {
  errors: number;
  stalls: number;
  tooManyResults: number;
  droppedSends: number;
  /** eth_getLogs answers that left logs out (lagging index), and the logs they hid. */
  laggingLogAnswers: number;
  hiddenLogs: number;
  crossedIds: number;
  rateLimited: number;
  /** Requests that arrived inside a Retry-After window the proxy had announced (the client did not wait). */
  insideRetryWindow: number;
  flakyHeaders: number;
}

/** A raw transaction the proxy forwarded to the node. */
export interface ForwardedTransaction {
  hash: string;
  from: string;
  nonce: number;
  maxFeePerGas: bigint | null;
  maxPriorityFeePerGas: bigint | null;
  data: string;
  /** Whether the node accepted it (returned a hash). */
  accepted: boolean;
}

interface JsonRpcRequest {
  jsonrpc: "2.0";
  id: number | string | null;
  method: string;
  params?: unknown[];
}

interface JsonRpcResponse {
  jsonrpc: "2.0";
  id: number | string | null;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

export const TOO_MANY_RESULTS = "query returned more than 10000 results";
export const INJECTED_ERROR = "injected fault: internal error";

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultProxy {
  readonly injected: InjectedFaults = {
    errors: 0,
    stalls: 0,
    tooManyResults: 0,
    droppedSends: 0,
    laggingLogAnswers: 0,
    hiddenLogs: 0,
    crossedIds: 0,
    rateLimited: 0,
    insideRetryWindow: 0,
    flakyHeaders: 0,
  };
  private lastResponse?: JsonRpcResponse;
  private retryWindowUntil = 0;
  private headerBurstUntil = 0;
  /** Requests received, by method. */
  readonly received = new Map<string, number>();
  readonly transactions: ForwardedTransaction[] = [];
  private random: () => number;
  private policyValue: FaultPolicy;

  private constructor(
    readonly url: string,
    private readonly target: string,
    private readonly server: http.Server,
    policy: FaultPolicy,
  ) {
    this.policyValue = policy;
    this.random = seededRandom(policy.seed);
  }

  /** Starts a proxy to `target` on a free port of 127.0.0.1. */
  static async start(target: string, policy: FaultPolicy): Promise<FaultProxy> {
    const server = http.createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const proxy = new FaultProxy(`http://127.0.0.1:${port}`, target, server, policy);
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      proxy.handle(req, res).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    return proxy;
  }

  get policy(): FaultPolicy {
    return this.policyValue;
  }

  /** Replaces the policy (and reseeds), e.g. to stop injecting faults for a test's final convergence phase. */
  set policy(policy: FaultPolicy) {
    this.policyValue = policy;
    this.random = seededRandom(policy.seed);
  }

  totalInjected(): number {
    const { errors, stalls, tooManyResults, droppedSends, laggingLogAnswers, crossedIds, rateLimited, flakyHeaders } =
      this.injected;
    return (
      errors + stalls + tooManyResults + droppedSends + laggingLogAnswers + crossedIds + rateLimited + flakyHeaders
    );
  }

  /** For `ms` from now, every eth_getBlockByNumber answer carries another block hash (a burst of bad reads). */
  headerBurst(ms: number): void {
    this.headerBurstUntil = Date.now() + ms;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private applies(method: string): boolean {
    return this.policyValue.methods === undefined || this.policyValue.methods.includes(method);
  }

  private chance(method: string, rate: number | undefined): boolean {
    // Always draw, so the decision sequence depends only on the seed and the request order.
    const draw = this.random();
    return this.applies(method) && draw < (rate ?? 0);
  }

  /** Like {@link chance} for the provider faults, drawing only when enabled (older seeds keep their sequence). */
  private maybe(method: string, rate: number | undefined): boolean {
    return rate !== undefined && rate > 0 && this.chance(method, rate);
  }

  /** A rate-limit answer for `request`, or undefined. */
  private rateLimit(request: JsonRpcRequest): { status: number; body: JsonRpcResponse } | undefined {
    const now = Date.now();
    const insideWindow = now < this.retryWindowUntil;
    if (insideWindow) this.injected.insideRetryWindow++;
    if (!insideWindow && !this.maybe(request.method, this.policyValue.rateLimitRate)) return undefined;
    this.injected.rateLimited++;
    if ((this.policyValue.rateLimitStyle ?? "http-429") === "http-429") {
      if (!insideWindow) this.retryWindowUntil = now + (this.policyValue.retryAfterSeconds ?? 1) * 1000;
      return {
        status: 429,
        body: { jsonrpc: "2.0", id: request.id, error: { code: 429, message: "Too Many Requests" } },
      };
    }
    return {
      status: 200,
      body: { jsonrpc: "2.0", id: request.id, error: { code: -32005, message: "request rate exceeded, slow down" } },
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as JsonRpcRequest | JsonRpcRequest[];
    const requests = Array.isArray(body) ? body : [body];
    for (const request of requests) this.received.set(request.method, (this.received.get(request.method) ?? 0) + 1);

    if (!Array.isArray(body)) {
      const limited = this.rateLimit(body);
      if (limited !== undefined) {
        const text = JSON.stringify(limited.body);
        const retryAfter = String(this.policyValue.retryAfterSeconds ?? 1);
        res.writeHead(limited.status, { "content-type": "application/json", "retry-after": retryAfter });
        res.end(text);
        return;
      }
      if (this.lastResponse !== undefined && this.maybe(body.method, this.policyValue.crossRate)) {
        this.injected.crossedIds++;
        const text = JSON.stringify(this.lastResponse);
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
        return;
      }
    }
    if (requests.some((request) => this.chance(request.method, this.policyValue.stallRate))) {
      this.injected.stalls++;
      await new Promise((resolve) => setTimeout(resolve, this.policyValue.stallMs ?? 5000));
    }
    let dropResponse = false;
    const responses = await Promise.all(
      requests.map(async (request) => {
        if (this.chance(request.method, this.policyValue.errorRate)) {
          this.injected.errors++;
          return { jsonrpc: "2.0", id: request.id, error: { code: -32603, message: INJECTED_ERROR } } as const;
        }
        if (request.method === "eth_getLogs" && (await this.logRangeTooWide(request))) {
          this.injected.tooManyResults++;
          return { jsonrpc: "2.0", id: request.id, error: { code: -32005, message: TOO_MANY_RESULTS } } as const;
        }
        const drop = this.chance(request.method, this.policyValue.dropSendRate);
        const response = await this.forwardAsConfigured(this.capped(request));
        if (request.method === "eth_sendRawTransaction") this.record(request, response);
        if (drop && request.method === "eth_sendRawTransaction" && response.result !== undefined) {
          this.injected.droppedSends++;
          dropResponse = true;
        }
        return response;
      }),
    );
    if (dropResponse) {
      res.destroy();
      return;
    }
    if (!Array.isArray(body)) this.lastResponse = responses[0] as JsonRpcResponse;
    const text = JSON.stringify(Array.isArray(body) ? responses : responses[0]);
    if (res.destroyed) return;
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  /** The request with its simulation gas capped by the policy. */
  private capped(request: JsonRpcRequest): JsonRpcRequest {
    const cap = this.policyValue.simulationGasCap;
    if (cap === undefined || (request.method !== "eth_call" && request.method !== "eth_estimateGas")) return request;
    const [tx, ...rest] = (request.params ?? []) as [{ gas?: string }, ...unknown[]];
    const gas = tx.gas === undefined ? cap : BigInt(tx.gas) < cap ? BigInt(tx.gas) : cap;
    return { ...request, params: [{ ...tx, gas: `0x${gas.toString(16)}` }, ...rest] };
  }

  private async logRangeTooWide(request: JsonRpcRequest): Promise<boolean> {
    const max = this.policyValue.maxLogRange;
    if (max === undefined) return false;
    const filter = (request.params?.[0] ?? {}) as { fromBlock?: string; toBlock?: string; blockHash?: string };
    if (filter.blockHash !== undefined) return false;
    const resolve = async (tag: string | undefined) => {
      if (tag !== undefined && /^0x[0-9a-f]+$/i.test(tag)) return Number(tag);
      if (tag === "earliest") return 0;
      const head = await this.forward({ jsonrpc: "2.0", id: 0, method: "eth_blockNumber", params: [] });
      return Number(head.result);
    };
    const from = await resolve(filter.fromBlock ?? "latest");
    const to = await resolve(filter.toBlock ?? "latest");
    return to - from + 1 > max;
  }

  /** Forwards, then applies the endpoint's view: behind the head, a lagging log index, flaky header reads. */
  private async forwardAsConfigured(request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const behind = this.policyValue.behindBlocks ?? 0;
    const lag = this.policyValue.logLagBlocks ?? 0;
    let head: number | undefined;
    const nodeHead = async () =>
      (head ??= Number((await this.forward({ jsonrpc: "2.0", id: 0, method: "eth_blockNumber", params: [] })).result));
    if (behind > 0 && request.method === "eth_blockNumber") {
      return { jsonrpc: "2.0", id: request.id, result: `0x${Math.max(0, (await nodeHead()) - behind).toString(16)}` };
    }
    if (behind > 0 && request.method === "eth_getBlockByNumber") {
      const asked = request.params?.[0];
      const visible = (await nodeHead()) - behind;
      if (asked === "latest" || asked === "pending") {
        request = { ...request, params: [`0x${visible.toString(16)}`, ...(request.params ?? []).slice(1)] };
      } else if (typeof asked === "string" && /^0x/.test(asked) && Number(asked) > visible) {
        return { jsonrpc: "2.0", id: request.id, result: null };
      }
    }
    const response = await this.forward(request);
    if (request.method === "eth_getLogs" && (lag > 0 || behind > 0) && Array.isArray(response.result)) {
      const indexed = (await nodeHead()) - Math.max(lag, behind);
      const logs = response.result as { blockNumber: string }[];
      const kept = logs.filter((log) => Number(log.blockNumber) <= indexed);
      if (kept.length < logs.length) {
        this.injected.laggingLogAnswers++;
        this.injected.hiddenLogs += logs.length - kept.length;
        return { ...response, result: kept };
      }
    }
    if (request.method === "eth_getBlockByNumber" && response.result) {
      const burst = Date.now() < this.headerBurstUntil;
      if (burst || this.maybe(request.method, this.policyValue.headerFlakeRate)) {
        this.injected.flakyHeaders++;
        const hash = `0x${Array.from({ length: 64 }, () => Math.floor(Math.random() * 16).toString(16)).join("")}`;
        return { ...response, result: { ...(response.result as object), hash } };
      }
    }
    return response;
  }

  private async forward(request: JsonRpcRequest): Promise<JsonRpcResponse> {
    const response = await fetch(this.target, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    return (await response.json()) as JsonRpcResponse;
  }

  private record(request: JsonRpcRequest, response: JsonRpcResponse) {
    const tx = Transaction.from(String(request.params?.[0]));
    this.transactions.push({
      hash: tx.hash!,
      from: tx.from!,
      nonce: tx.nonce,
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
      data: tx.data,
      accepted: response.result !== undefined,
    });
  }
}
