// What a failed JSON-RPC call means to the keeper. Providers disagree on codes and wording, so classification looks
// at the HTTP status, the JSON-RPC code and the message (case-insensitively); an ambiguous code such as -32005 (used
// both for "too many results" and for rate limits) counts as "too many results" only when the answer says so.

/** What a failed call means to the keeper. */
export type RpcErrorKind =
  | "too-many-results"
  | "rate-limited"
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
    /** For "rate-limited": how long the provider asked to wait (Retry-After, already capped), if it said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

// Ordered: the first pattern that matches wins. Rate limits come before "too many results" because both use words
// such as "limit" and "exceeded"; "too many results" needs words about results, logs, blocks or ranges.
const PATTERNS: readonly [RpcErrorKind, RegExp][] = [
  [
    "rate-limited",
    /rate[- ]?limit|too many requests|request rate|requests? per second|daily request count|request limit (reached|exceeded)|exceeded (the )?(rate|quota|capacity|compute units|throughput)|capacity exceeded|compute units|quota exceeded|throttl|over rate|retry after/i,
  ],
  [
    "too-many-results",
    /query returned more than|block range (is )?too (wide|large)|response size (exceeded|should not)|log response size exceeded|too many (results|logs|blocks)|exceed(s|ed)? max(imum)? (results|block range|logs)|range (is )?too large|please limit the query|query timeout exceeded|returned too many|more than \d+ (results|logs)|block range extends beyond|ranges over \d+ blocks/i,
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
  // geth refuses a transaction whose cost, with the sender's others pending, exceeds the balance ("overdraft").
  ["insufficient-funds", /insufficient funds|insufficient balance|sender doesn't have enough funds|overdraft/i],
  ["reverted", /execution reverted|reverted|revert|vm exception|invalid opcode|out of gas|gas required exceeds/i],
  ["timeout", /timeout|timed out|aborted|deadline exceeded|gateway time-?out|ETIMEDOUT/i],
  [
    "unreachable",
    /ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|EPIPE|fetch failed|socket hang up|network error|other side closed|bad gateway|service unavailable/i,
  ],
];

/** JSON-RPC codes providers use for rate limits (429 mirrored into the body, QuickNode, Alchemy, Chainstack...). */
const RATE_LIMIT_CODES = new Set([429, -32029, -32090, -32007, -32097]);

/** The text an error carries: message, cause and string data. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? ` ${cause.message} ${(cause as { code?: string }).code ?? ""}` : "";
    const data = (err as { data?: unknown }).data;
    const dataText = typeof data === "string" ? ` ${data}` : "";
    return `${err.message}${causeText}${dataText}`;
  }
  if (typeof err === "string") return err;
  if (err && typeof err === "object" && "message" in err) {
    const data = (err as { data?: unknown }).data;
    return `${String((err as { message: unknown }).message)}${typeof data === "string" ? ` ${data}` : ""}`;
  }
  return String(err);
}

/** Classifies a node or transport error by its message (case-insensitive) and JSON-RPC code. */
export function classifyRpcError(err: unknown): RpcErrorKind {
  if (err instanceof RpcError && err.kind !== "other") return err.kind;
  const message = messageOf(err);
  for (const [kind, pattern] of PATTERNS) if (pattern.test(message)) return kind;
  const code = (err as { code?: unknown })?.code;
  // -32005 is "limit exceeded": a results limit only when the message says so (matched above), else a rate limit.
  if (code === -32005 || (typeof code === "number" && RATE_LIMIT_CODES.has(code))) return "rate-limited";
  // 3 is geth's "execution reverted".
  if (code === 3) return "reverted";
  return "other";
}

/**
 * The wait a `Retry-After` value asks for (delay-seconds or an HTTP date), at most `capMs`; undefined when absent
 * or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, capMs: number, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(capMs, Math.max(0, Math.round(ms)));
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
