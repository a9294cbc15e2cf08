// One JSON-RPC endpoint: a request over HTTP (fetch, with a timeout) or an in-process EIP-1193 provider. The HTTP
// answer is checked to be the answer to THIS request (jsonrpc "2.0", the same id): a provider or proxy that crosses
// answers between concurrent requests must never make the keeper use another request's result.
import { z } from "zod";

import { classifyRpcError, messageOf, parseRetryAfter, RpcError } from "./errors.js";

/** Minimal EIP-1193 surface, as Hardhat's `network.create()` provider and browser wallets offer. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] | object }): Promise<unknown>;
}

/** Sends one JSON-RPC request and returns its result; throws a classified {@link RpcError}. */
export interface Transport {
  /** For logs and metric labels; never carries credentials. */
  readonly label: string;
  request(method: string, params: unknown[]): Promise<unknown>;
}

export interface HttpTransportOptions {
  /** [10000] per-request timeout. */
  timeoutMs?: number;
  /** [30000] the longest Retry-After honoured. */
  maxRetryAfterMs?: number;
  /** [the redacted URL] the name in logs and metrics. */
  label?: string;
}

const envelope = z.object({
  jsonrpc: z.unknown(),
  id: z.unknown(),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), message: z.string(), data: z.unknown() }).partial().optional(),
});

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

// Ids are unique across every transport of the process, so an answer can never match a request of another client.
let nextId = 1;

export class HttpTransport implements Transport {
  readonly label: string;
  private readonly timeoutMs: number;
  private readonly maxRetryAfterMs: number;

  constructor(
    private readonly url: string,
    options: HttpTransportOptions = {},
  ) {
    this.label = options.label ?? redactUrl(url);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  }

  async request(method: string, params: unknown[]): Promise<unknown> {
    const id = nextId++;
    let response: Response;
    const post = () =>
      fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    try {
      // A kept-alive connection the server closed while this process was busy (the embedded store's first open
      // blocks the event loop for seconds) fails the next request at once: one immediate retry on a new connection,
      // so a healthy node is not counted as unreachable.
      response = await post().catch((err: unknown) => {
        if (!isStaleConnection(err)) throw err;
        return post();
      });
    } catch (err) {
      const kind = (err as Error).name === "TimeoutError" ? "timeout" : classifyRpcError(err);
      throw new RpcError(
        `${method} to ${this.label} failed: ${messageOf(err)}`,
        method,
        kind === "other" ? "unreachable" : kind,
      );
    }
    const text = await response.text().catch(() => "");
    if (response.status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.maxRetryAfterMs);
      throw new RpcError(
        `${method}: HTTP 429 from ${this.label}${retryAfterMs === undefined ? "" : ` (retry after ${retryAfterMs} ms)`}`,
        method,
        "rate-limited",
        429,
        undefined,
        retryAfterMs,
      );
    }
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
    const parsed = envelope.safeParse(body);
    if (!parsed.success || Array.isArray(body)) {
      throw new RpcError(`${method}: malformed JSON-RPC response: ${text.slice(0, 200)}`, method, "malformed");
    }
    if (parsed.data.jsonrpc !== "2.0" || parsed.data.id !== id) {
      throw new RpcError(
        `${method}: answer is not for this request (jsonrpc ${JSON.stringify(parsed.data.jsonrpc)}, id ${JSON.stringify(parsed.data.id)}, expected id ${id})`,
        method,
        "malformed",
      );
    }
    const { result, error } = parsed.data;
    if (error) {
      const message = `${method}: ${error.message ?? "unknown error"}${typeof error.data === "string" ? ` (${error.data})` : ""}`;
      const kind = classifyRpcError({ message, code: error.code });
      const retryAfterMs =
        kind === "rate-limited"
          ? parseRetryAfter(response.headers.get("retry-after"), this.maxRetryAfterMs)
          : undefined;
      throw new RpcError(message, method, kind, error.code, error.data, retryAfterMs);
    }
    if (!("result" in (body as object))) {
      throw new RpcError(`${method}: JSON-RPC response has neither result nor error`, method, "malformed");
    }
    if (!response.ok) throw new RpcError(`${method}: HTTP ${response.status}`, method, "other");
    return result;
  }
}

/** An in-process provider (tests, the Hardhat task): its errors classified like a node's. */
export class ProviderTransport implements Transport {
  readonly label = "in-process provider";

  constructor(private readonly provider: Eip1193Provider) {}

  async request(method: string, params: unknown[]): Promise<unknown> {
    try {
      return await this.provider.request({ method, params });
    } catch (err) {
      if (err instanceof RpcError) throw err;
      throw new RpcError(
        `${method} failed: ${messageOf(err)}`,
        method,
        classifyRpcError(err),
        typeof (err as { code?: unknown })?.code === "number" ? (err as { code: number }).code : undefined,
        (err as { data?: unknown })?.data,
      );
    }
  }
}

/** Whether `err` is a kept-alive socket closed under the request (not a refused connection, not a timeout). */
export function isStaleConnection(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return (
    cause?.code === "UND_ERR_SOCKET" ||
    cause?.code === "ECONNRESET" ||
    cause?.code === "EPIPE" ||
    /other side closed/i.test(cause?.message ?? "")
  );
}
