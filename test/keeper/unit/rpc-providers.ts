// The RPC layer against hostile providers: answers for another request, rate limits with Retry-After, -32005 in its
// two meanings, wrong blocks and stray logs, and several endpoints with fail-over and lag.
import http from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";

import { parseConfig } from "../../../keeper/src/config.js";
import { classifyRpcError, parseRetryAfter, RpcClient, RpcError } from "../../../keeper/src/rpc.js";
import { bloomBits, bloomMayContain } from "../../../keeper/src/rpc/bloom.js";

interface Request {
  id: number;
  method: string;
  params: unknown[];
}
type Reply = { status?: number; headers?: Record<string, string>; body: unknown };

/** A scripted JSON-RPC server on a free port: `answer` decides each reply; every request is recorded with its time. */
async function scriptedServer(answer: (request: Request, index: number) => Reply) {
  const seen: (Request & { at: number })[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const request = JSON.parse(body) as Request;
      seen.push({ ...request, at: Date.now() });
      const reply = answer(request, seen.length - 1);
      res.writeHead(reply.status ?? 200, { "content-type": "application/json", ...reply.headers });
      res.end(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const ok = (request: Request, result: unknown): Reply => ({ body: { jsonrpc: "2.0", id: request.id, result } });
const ADDRESS = "0x" + "11".repeat(20);
const HASH = (n: number) => "0x" + n.toString(16).padStart(64, "0");

function header(number: number, hash = HASH(number)) {
  return {
    number: `0x${number.toString(16)}`,
    hash,
    parentHash: HASH(number - 1),
    timestamp: "0x1",
  };
}

describe("Keeper RPC against hostile providers", function () {
  this.timeout(20_000);
  const servers: { close(): Promise<void> }[] = [];
  async function serve(answer: (request: Request, index: number) => Reply) {
    const server = await scriptedServer(answer);
    servers.push(server);
    return server;
  }
  afterEach(async function () {
    for (const server of servers.splice(0)) await server.close();
  });

  describe("classifyRpcError", function () {
    const cases: [unknown, string][] = [
      [{ message: "project ID request rate exceeded", code: -32005 }, "rate-limited"],
      [{ message: "daily request count exceeded, request rate limited", code: -32005 }, "rate-limited"],
      [{ message: "Your app has exceeded its compute units per second capacity", code: 429 }, "rate-limited"],
      [{ message: "Too Many Requests" }, "rate-limited"],
      [{ message: "request limit reached", code: -32007 }, "rate-limited"],
      [{ message: "query returned more than 10000 results", code: -32005 }, "too-many-results"],
      [{ message: "Limit exceeded", code: -32005 }, "rate-limited"],
      [{ message: "something", code: -32029 }, "rate-limited"],
    ];
    for (const [error, kind] of cases) {
      it(`classifies ${JSON.stringify(error)} as ${kind}`, function () {
        expect(classifyRpcError(error)).to.equal(kind);
      });
    }
  });

  describe("parseRetryAfter", function () {
    it("reads delay-seconds and HTTP dates, capped, and ignores what it cannot read", function () {
      expect(parseRetryAfter("2", 30_000)).to.equal(2000);
      expect(parseRetryAfter("0.5", 30_000)).to.equal(500);
      expect(parseRetryAfter("600", 30_000)).to.equal(30_000);
      const now = Date.parse("2026-01-01T00:00:00Z");
      expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:03 GMT", 30_000, now)).to.equal(3000);
      expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", 30_000, now)).to.equal(0);
      expect(parseRetryAfter("soon", 30_000)).to.equal(undefined);
      expect(parseRetryAfter(null, 30_000)).to.equal(undefined);
    });
  });

  describe("answers for another request", function () {
    it("rejects an answer carrying another id, retries, and uses only the answer to its own request", async function () {
      const server = await serve((request, index) =>
        index === 0 ? { body: { jsonrpc: "2.0", id: request.id + 1000, result: "0x999" } } : ok(request, "0x2a"),
      );
      const kinds: string[] = [];
      const client = new RpcClient(server.url, { onError: (_method, kind) => kinds.push(kind) });
      expect(await client.blockNumber()).to.equal(42);
      expect(kinds).to.deep.equal(["malformed"]);
      expect(server.seen).to.have.length(2);
    });

    it("rejects an answer without jsonrpc 2.0, and fails when every answer is crossed", async function () {
      const server = await serve((request) => ({ body: { jsonrpc: "1.0", id: request.id, result: "0x1" } }));
      const error = (await new RpcClient(server.url).blockNumber().catch((e: unknown) => e)) as RpcError;
      expect(error.kind).to.equal("malformed");
      expect(error.message).to.match(/answer is not for this request/);
    });

    it("rejects a block other than the one asked and logs outside the filter", async function () {
      let wrong = true;
      const server = await serve((request) => {
        if (request.method === "eth_getBlockByNumber") {
          const result = wrong ? header(8) : header(7);
          wrong = false;
          return ok(request, result);
        }
        return ok(request, [
          {
            address: ADDRESS,
            topics: [],
            data: "0x",
            blockNumber: "0x63",
            blockHash: HASH(99),
            transactionHash: HASH(1),
            logIndex: "0x0",
          },
        ]);
      });
      const client = new RpcClient(server.url, { retries: 0 });
      const block = await client.getBlock(7).catch((e: unknown) => e);
      expect((block as RpcError).message).to.match(/asked for block 7, got block 8/);
      expect((await client.getBlock(7)).number).to.equal(7);
      const logs = (await client.getLogs({ address: ADDRESS, fromBlock: 1, toBlock: 10 }).catch((e) => e)) as RpcError;
      expect(logs.kind).to.equal("malformed");
      expect(logs.message).to.match(/outside the filter/);
    });
  });

  describe("rate limits", function () {
    it("waits for Retry-After after HTTP 429 before asking again", async function () {
      const server = await serve((request, index) =>
        index === 0 ? { status: 429, headers: { "retry-after": "1" }, body: "Too Many Requests" } : ok(request, "0x5"),
      );
      const client = new RpcClient(server.url);
      expect(await client.blockNumber()).to.equal(5);
      expect(server.seen[1].at - server.seen[0].at).to.be.at.least(950);
    });

    it("caps Retry-After at maxRetryAfterMs", async function () {
      const server = await serve((request, index) =>
        index === 0 ? { status: 429, headers: { "retry-after": "3600" }, body: "" } : ok(request, "0x5"),
      );
      const started = Date.now();
      expect(await new RpcClient(server.url, { maxRetryAfterMs: 300 }).blockNumber()).to.equal(5);
      expect(Date.now() - started).to.be.within(250, 3000);
    });

    it("retries a -32005 rate limit on an ordinary call instead of failing it", async function () {
      const server = await serve((request, index) =>
        index < 3
          ? { body: { jsonrpc: "2.0", id: request.id, error: { code: -32005, message: "rate limit exceeded" } } }
          : ok(request, "0x7"),
      );
      expect(await new RpcClient(server.url).getBalance(ADDRESS)).to.equal(7n);
    });

    it("does not retry a -32005 'more than 10000 results' (the range must shrink)", async function () {
      const server = await serve((request) => ({
        body: {
          jsonrpc: "2.0",
          id: request.id,
          error: { code: -32005, message: "query returned more than 10000 results" },
        },
      }));
      const error = (await new RpcClient(server.url)
        .getLogs({ address: ADDRESS, fromBlock: 0, toBlock: 10 })
        .catch((e: unknown) => e)) as RpcError;
      expect(error.kind).to.equal("too-many-results");
      expect(server.seen).to.have.length(1);
    });
  });

  describe("several endpoints", function () {
    it("fails over to the next endpoint and sets one failing twice in a row aside", async function () {
      const down = await serve(() => ({ status: 502, body: "<html>bad gateway</html>" }));
      const up = await serve((request) => ok(request, "0x1"));
      const client = new RpcClient([down.url, up.url]);
      for (let i = 0; i < 5; i++) expect(await client.getBalance(ADDRESS)).to.equal(1n);
      // One failure is retried elsewhere; the second in a row sets the endpoint aside for a back-off.
      expect(down.seen).to.have.length(2);
      expect(up.seen).to.have.length(5);
      expect(client.statusLine()).to.match(/#0 .* set-aside .*\| #1 .* ok/);
    });

    it("does not read from an endpoint more than maxLagBlocks behind the best head", async function () {
      const behind = await serve((request) => ok(request, request.method === "eth_blockNumber" ? "0x10" : "0x1"));
      const current = await serve((request) => ok(request, request.method === "eth_blockNumber" ? "0x20" : "0x2"));
      const client = new RpcClient([behind.url, current.url], { maxLagBlocks: 3 });
      expect(await client.blockNumber()).to.equal(0x20);
      expect(await client.getBalance(ADDRESS)).to.equal(2n);
      expect(client.pool.stats().map((s) => s.lag)).to.deep.equal([16, 0]);
      expect(behind.seen.filter((r) => r.method === "eth_getBalance")).to.have.length(0);
    });

    it("reads a block that must exist from another endpoint when the first has none, and names the block when none has it", async function () {
      // The first endpoint's head is below block 7 (it lags, within maxLagBlocks): it answers null.
      const lagging = await serve((request) => ok(request, request.method === "eth_blockNumber" ? "0x6" : null));
      const current = await serve((request) =>
        ok(request, request.method === "eth_blockNumber" ? "0x8" : header(Number(request.params[0]))),
      );
      const client = new RpcClient([lagging.url, current.url]);
      expect(await client.blockNumber()).to.equal(8);
      expect((await client.getBlock(7)).number).to.equal(7);
      expect(
        lagging.seen.filter((r) => r.method === "eth_getBlockByNumber"),
        "asked first",
      ).to.have.length(1);
      expect(await client.findBlock(9), "a block that may not exist is null, not an error").to.equal(null);

      const alone = new RpcClient([lagging.url], { retries: 1 });
      const error = (await alone.getBlock(7).catch((e: unknown) => e)) as RpcError;
      expect(error).to.be.instanceOf(RpcError);
      expect(error.message).to.match(/eth_getBlockByNumber: .*block 7 not found/);
    });

    it("broadcasts a raw transaction to every endpoint and succeeds when one accepts it", async function () {
      const refusing = await serve(() => ({ status: 503, body: "unavailable" }));
      const accepting = await serve((request) => ok(request, HASH(5)));
      const client = new RpcClient([refusing.url, accepting.url]);
      expect(await client.sendRawTransaction("0x01")).to.equal(HASH(5));
      expect(refusing.seen.map((r) => r.method)).to.include("eth_sendRawTransaction");
    });

    it("gives a transaction again to every endpoint that failed its broadcast, also when none accepted at first", async function () {
      // Each endpoint is unavailable for its first send only: the call's own retry reaches one of them, the
      // background re-send must reach the other.
      const flaky = () =>
        serve((request, index) => (index === 0 ? { status: 503, body: "unavailable" } : ok(request, HASH(5))));
      const [first, second] = [await flaky(), await flaky()];
      const client = new RpcClient([first.url, second.url]);
      expect(await client.sendRawTransaction("0x01")).to.equal(HASH(5));
      const sends = (server: typeof first) => server.seen.filter((r) => r.method === "eth_sendRawTransaction").length;
      const deadline = Date.now() + 5_000;
      while ((sends(first) < 2 || sends(second) < 2) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(sends(first), "sends to the first endpoint").to.be.at.least(2);
      expect(sends(second), "sends to the second endpoint").to.be.at.least(2);
    });
  });

  describe("rpc.urls config", function () {
    const base = { chainId: 1, billingAddress: ADDRESS, signer: { type: "env", variable: "K" } };
    const issues = (rpc: unknown) => {
      try {
        parseConfig({ ...base, rpc });
        return [];
      } catch (err) {
        return (err as { issues: string[] }).issues;
      }
    };

    it("accepts several http(s) URLs and refuses an empty list, duplicates and other schemes, naming the entry", function () {
      expect(issues({ urls: ["https://a.example/k1", "http://127.0.0.1:8545"] })).to.deep.equal([]);
      expect(issues({ urls: [] })).to.deep.equal(["rpc.urls: expected at least one http(s) URL"]);
      expect(issues({ urls: ["http://a.example/x", "http://a.example/x"] })).to.deep.equal([
        "rpc.urls.1: duplicate of entry 0 (each endpoint once)",
      ]);
      const scheme = issues({ urls: ["ws://a.example/secret-key"] });
      expect(scheme).to.have.length(1);
      expect(scheme[0]).to.match(/^rpc\.urls\.0: expected an http\(s\) URL/);
      expect(scheme[0]).to.not.include("secret-key");
    });
  });

  describe("bloom", function () {
    it("finds the bits of an address in a bloom built from them, and not those of another", function () {
      const bytes = new Uint8Array(256);
      for (const bit of bloomBits(ADDRESS)) bytes[255 - Math.floor(bit / 8)] |= 1 << (bit % 8);
      const bloom = "0x" + Buffer.from(bytes).toString("hex");
      expect(bloomMayContain(bloom, ADDRESS)).to.equal(true);
      expect(bloomMayContain(bloom, "0x" + "22".repeat(20))).to.equal(false);
      expect(bloomMayContain("0x" + "00".repeat(256), ADDRESS)).to.equal(false);
    });
  });
});
