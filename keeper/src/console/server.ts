// The billing console: a read-only page and the JSON API it polls, served on its own port (127.0.0.1 by default).
// Nothing secret is on any page; when a bearer token is configured, every API call must carry it.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

import { formatUnits } from "ethers";

import type { Db } from "../store/db.js";
import { ApiError, Params } from "./params.js";
import {
  STORE_STATUSES,
  chargesPerDay,
  dueSoon,
  overview,
  pendingTransactions,
  quarantined,
  revenueByMerchant,
  subscriptionsByStatus,
} from "./queries.js";

/** What the console reads: the store, and the keeper's live view (health with reasons, chain time, head). */
export interface ConsoleSources {
  db: Db;
  /** The keeper's health now: ok, the reasons when not, and whatever else it reports (head, lag). */
  health: () => { ok: boolean; [key: string]: unknown };
  /** Chain time (the latest block's timestamp), the clock subscriptions fall due by. */
  chainTime: () => number | Promise<number>;
  /** Wall clock in milliseconds (transaction ages). */
  nowMs?: () => number;
  /** A token's symbol and decimals, when the keeper can tell (cached by the caller); amounts are then formatted. */
  tokenInfo?: (token: string) => Promise<{ symbol: string; decimals: number } | undefined>;
}

export interface ConsoleOptions {
  host: string;
  port: number;
  /** When set, API calls need `Authorization: Bearer <token>`. Required on a non-loopback host. */
  token?: string;
  /** Told about a store error behind a 500 answer (the page only says to look at the log). */
  onError?: (error: unknown) => void;
}

const require = createRequire(import.meta.url);

/** Static files: name -> [path, content type]. uPlot is served from its npm package: no CDN. */
const ASSETS: Record<string, [string, string]> = {
  "/": [fileURLToPath(new URL("./static/index.html", import.meta.url)), "text/html; charset=utf-8"],
  "/console.js": [fileURLToPath(new URL("./static/console.js", import.meta.url)), "text/javascript; charset=utf-8"],
  "/console.css": [fileURLToPath(new URL("./static/console.css", import.meta.url)), "text/css; charset=utf-8"],
  "/vendor/uPlot.iife.min.js": [require.resolve("uplot/dist/uPlot.iife.min.js"), "text/javascript; charset=utf-8"],
  "/vendor/uPlot.min.css": [require.resolve("uplot/dist/uPlot.min.css"), "text/css; charset=utf-8"],
};

const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Answers one API path; throws ApiError for a bad request. */
async function api(path: string, params: Params, sources: ConsoleSources): Promise<unknown> {
  const now = await sources.chainTime();
  const nowMs = (sources.nowMs ?? Date.now)();
  switch (path) {
    case "/api/overview": {
      params.done();
      return { health: sources.health(), chainTime: now, ...(await overview(sources.db)) };
    }
    case "/api/charges": {
      const days = params.int("days", 1, 366, 30);
      params.done();
      return { days, items: await chargesPerDay(sources.db, now, days) };
    }
    case "/api/revenue": {
      const days = params.int("days", 0, 3660, 0);
      params.done();
      const items = await revenueByMerchant(sources.db, now, days === 0 ? undefined : days);
      return {
        days: days === 0 ? null : days,
        items: await Promise.all(items.map((item) => withToken(item, sources))),
      };
    }
    case "/api/subscriptions": {
      const status = params.choice("status", STORE_STATUSES, undefined);
      const limit = params.int("limit", 1, 200, 50);
      const offset = params.int("offset", 0, 10_000_000, 0);
      params.done();
      if (status === undefined) throw new ApiError(400, `status is required: one of ${STORE_STATUSES.join(", ")}`);
      return subscriptionsByStatus(sources.db, status, limit, offset);
    }
    case "/api/due": {
      const hours = params.int("hours", 1, 168, 24);
      const limit = params.int("limit", 1, 200, 50);
      params.done();
      return { hours, ...(await dueSoon(sources.db, now, hours, limit)) };
    }
    case "/api/pending": {
      const limit = params.int("limit", 1, 200, 50);
      params.done();
      return { items: await pendingTransactions(sources.db, nowMs, limit) };
    }
    case "/api/quarantine": {
      const limit = params.int("limit", 1, 200, 50);
      params.done();
      return { items: await quarantined(sources.db, limit) };
    }
    default:
      throw new ApiError(404, `no such endpoint ${path}`);
  }
}

/** Adds the token's symbol and the amount in token units when the keeper knows the token. */
async function withToken<T extends { token: string; amount: string }>(item: T, sources: ConsoleSources) {
  const info = await sources.tokenInfo?.(item.token).catch(() => undefined);
  return info === undefined
    ? item
    : { ...item, symbol: info.symbol, formatted: formatUnits(BigInt(item.amount), info.decimals) };
}

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
) {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, ...extra });
  res.end(body);
}

/**
 * Starts the console. Refuses a non-loopback `host` without a token: the API then answers anyone who can reach it.
 *
 * @returns Its URL and a close function.
 */
export async function startConsoleServer(
  sources: ConsoleSources,
  options: ConsoleOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  const expected = options.token === undefined || options.token === "" ? undefined : digest(options.token);
  if (expected === undefined && !LOOPBACK.has(options.host)) {
    throw new Error(
      `console.host ${options.host} is reachable from other machines: set console.token (or KEEPER_CONSOLE_TOKEN)`,
    );
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://console.invalid");
    if (req.method !== "GET")
      return send(res, 405, "application/json", JSON.stringify({ error: "only GET" }), { allow: "GET" });
    const asset = ASSETS[url.pathname];
    if (asset !== undefined) {
      readFile(asset[0]).then(
        (body) => send(res, 200, asset[1], body),
        () => send(res, 500, "text/plain", "asset missing"),
      );
      return;
    }
    if (!url.pathname.startsWith("/api/")) return send(res, 404, "text/plain", "not found\n");
    if (expected !== undefined) {
      const header = req.headers.authorization ?? "";
      const given = header.startsWith("Bearer ") ? digest(header.slice(7)) : undefined;
      if (given === undefined || !timingSafeEqual(given, expected)) {
        return send(res, 401, "application/json", JSON.stringify({ error: "a valid bearer token is required" }), {
          "www-authenticate": 'Bearer realm="billing console"',
        });
      }
    }
    api(url.pathname, new Params(url.searchParams), sources).then(
      (body) => send(res, 200, "application/json", JSON.stringify(body)),
      (error: unknown) => {
        if (error instanceof ApiError)
          return send(res, error.status, "application/json", JSON.stringify({ error: error.message }));
        options.onError?.(error);
        send(
          res,
          500,
          "application/json",
          JSON.stringify({ error: "the store could not answer; see the keeper's log" }),
        );
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
