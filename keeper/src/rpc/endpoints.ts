// Several RPC endpoints behind one client: reads go to the first healthy one in configured order, an endpoint that
// fails, rate-limits or falls behind the others' head is set aside for a while, and per-endpoint figures (requests,
// errors by kind, latency, head lag) are kept for metrics and the status line.
import type { RpcErrorKind } from "./errors.js";
import type { Transport } from "./transport.js";

export interface EndpointOptions {
  /** [3] an endpoint whose head is more than this many blocks behind the best head is not used for reads. */
  maxLagBlocks?: number;
  /** [1000] first cool-down after a failure; doubles per consecutive failure up to maxCooldownMs. */
  baseCooldownMs?: number;
  /** [30000] */
  maxCooldownMs?: number;
  now?: () => number;
}

export interface EndpointStats {
  label: string;
  requests: number;
  errors: Partial<Record<RpcErrorKind, number>>;
  /** Last known head, or null before the first eth_blockNumber answer. */
  head: number | null;
  /** Blocks behind the best head known from all endpoints. */
  lag: number;
  healthy: boolean;
  latencyMs: number | null;
}

/** One endpoint with its health. */
export class Endpoint {
  requests = 0;
  readonly errors: Partial<Record<RpcErrorKind, number>> = {};
  head: number | null = null;
  latencyMs: number | null = null;
  consecutiveFailures = 0;
  /** Not used for reads before this time (ms), unless no endpoint is usable. */
  coolUntil = 0;
  /** Asked for a pause (rate limit) until this time (ms): no request at all goes to it before. */
  pausedUntil = 0;

  constructor(readonly transport: Transport) {}

  get label(): string {
    return this.transport.label;
  }
}

/** Errors that say nothing about the endpoint's health (the request itself was refused). */
const REQUEST_ERRORS: ReadonlySet<RpcErrorKind> = new Set([
  "too-many-results",
  "nonce-too-low",
  "already-known",
  "underpriced",
  "insufficient-funds",
  "reverted",
]);

export class EndpointPool {
  readonly endpoints: readonly Endpoint[];
  private readonly maxLagBlocks: number;
  private readonly baseCooldownMs: number;
  private readonly maxCooldownMs: number;
  private readonly now: () => number;

  constructor(transports: readonly Transport[], options: EndpointOptions = {}) {
    if (transports.length === 0) throw new Error("EndpointPool: at least one endpoint is needed");
    this.endpoints = transports.map((t) => new Endpoint(t));
    this.maxLagBlocks = options.maxLagBlocks ?? 3;
    this.baseCooldownMs = options.baseCooldownMs ?? 1000;
    this.maxCooldownMs = options.maxCooldownMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.endpoints.length;
  }

  /** The best head any endpoint reported. */
  bestHead(): number | null {
    const heads = this.endpoints.map((e) => e.head).filter((h): h is number => h !== null);
    return heads.length === 0 ? null : Math.max(...heads);
  }

  lag(endpoint: Endpoint): number {
    const best = this.bestHead();
    return best === null || endpoint.head === null ? 0 : best - endpoint.head;
  }

  /** Usable for reads: not cooling down after a failure and not behind the others. */
  usable(endpoint: Endpoint): boolean {
    return endpoint.coolUntil <= this.now() && this.lag(endpoint) <= this.maxLagBlocks;
  }

  /**
   * The endpoint for the next read: the first usable one not in `tried`; failing that, any not tried (the one whose
   * cool-down ends first); failing that, undefined.
   */
  pick(tried: ReadonlySet<Endpoint> = new Set()): Endpoint | undefined {
    const candidates = this.endpoints.filter((e) => !tried.has(e));
    const usable = candidates.find((e) => this.usable(e));
    if (usable) return usable;
    // Nothing usable: a lagging endpoint that answers beats none (its answers are still checked).
    return [...candidates].sort((a, b) => a.coolUntil - b.coolUntil || this.lag(a) - this.lag(b))[0];
  }

  /** Records a successful request. */
  succeeded(endpoint: Endpoint, latencyMs: number): void {
    endpoint.requests++;
    endpoint.latencyMs = latencyMs;
    endpoint.consecutiveFailures = 0;
  }

  /** Records a failed request; a fault of the endpoint (not of the request) sets it aside for a while. */
  failed(endpoint: Endpoint, kind: RpcErrorKind, retryAfterMs?: number): void {
    endpoint.requests++;
    endpoint.errors[kind] = (endpoint.errors[kind] ?? 0) + 1;
    if (REQUEST_ERRORS.has(kind)) return;
    endpoint.consecutiveFailures++;
    const backoff = Math.min(this.maxCooldownMs, this.baseCooldownMs * 2 ** (endpoint.consecutiveFailures - 1));
    // A rate limit pauses the endpoint (for its Retry-After, else the back-off). Other faults set it aside only in a
    // pool of several and from the second in a row: one bad answer is retried elsewhere, not held against it.
    const cooldown =
      kind === "rate-limited"
        ? (retryAfterMs ?? this.rateLimitBackoff(endpoint.consecutiveFailures))
        : this.size > 1 && endpoint.consecutiveFailures > 1
          ? backoff
          : 0;
    endpoint.coolUntil = Math.max(endpoint.coolUntil, this.now() + cooldown);
    if (kind === "rate-limited") endpoint.pausedUntil = Math.max(endpoint.pausedUntil, this.now() + cooldown);
  }

  /** Without a Retry-After: 250 ms doubling per failure in a row, with equal jitter (half fixed, half random). */
  private rateLimitBackoff(failures: number): number {
    const ceiling = Math.min(this.maxCooldownMs, 250 * 2 ** Math.min(failures - 1, 10));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** Sets an endpoint aside because an answer of it proved inconsistent (e.g. a lagging log index). */
  suspect(endpoint: Endpoint): void {
    endpoint.errors.malformed = (endpoint.errors.malformed ?? 0) + 1;
    endpoint.consecutiveFailures++;
    endpoint.coolUntil = Math.max(endpoint.coolUntil, this.now() + this.baseCooldownMs);
  }

  stats(): EndpointStats[] {
    return this.endpoints.map((e) => ({
      label: e.label,
      requests: e.requests,
      errors: { ...e.errors },
      head: e.head,
      lag: this.lag(e),
      healthy: this.usable(e),
      latencyMs: e.latencyMs,
    }));
  }

  /** One line for logs and `keeper status`: each endpoint's health, head lag, latency and error counts. */
  statusLine(): string {
    return this.stats()
      .map((s) => {
        const errors = Object.entries(s.errors)
          .map(([kind, n]) => `${kind}=${n}`)
          .join(",");
        return `${s.label} ${s.healthy ? "ok" : "set-aside"} head=${s.head ?? "?"} lag=${s.lag} latency=${s.latencyMs ?? "?"}ms requests=${s.requests}${errors ? ` errors(${errors})` : ""}`;
      })
      .join(" | ");
  }
}
