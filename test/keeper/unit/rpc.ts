import http from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { network } from "hardhat";

import { classifyRpcError, RpcClient, RpcError, suggestedRange } from "../../../keeper/src/rpc.js";

describe("Keeper RPC", function () {
  describe("classifyRpcError", function () {
    const cases: [string, string][] = [
      ["query returned more than 10000 results. Try with this block range [0x10, 0x20].", "too-many-results"],
      ["Log response size exceeded. this block range should work: [0x0, 0x1f3]", "too-many-results"],
      ["block range is too wide", "too-many-results"],
      ["eth_getLogs is limited to a 10,000 range", "other"],
      ["Response size exceeded", "too-many-results"],
      ["exceed maximum block range: 5000", "too-many-results"],
      ["Query timeout exceeded. Consider reducing your block range.", "too-many-results"],
      ["request timed out", "timeout"],
      ["NONCE TOO LOW", "nonce-too-low"],
      ["Nonce too low. Expected nonce to be 5 but got 3.", "nonce-too-low"],
      ["Nonce too high. Expected nonce to be 3 but got 5.", "other"],
      ["already known", "already-known"],
      ["Known transaction: 0xabc", "already-known"],
      ["replacement transaction underpriced", "underpriced"],
      ["Replacement Transaction Underpriced", "underpriced"],
      ["insufficient funds for gas * price + value", "insufficient-funds"],
      ["transaction would cause overdraft", "insufficient-funds"],
      [
        "Sender doesn't have enough funds to send tx. The max upfront cost is: 3420153000000000000 and the sender's balance is: 2742489793673494607.",
        "insufficient-funds",
      ],
      ["execution reverted: BillingNotDue", "reverted"],
      ["fetch failed ECONNREFUSED", "unreachable"],
      ["something else entirely", "other"],
    ];
    for (const [message, kind] of cases) {
      it(`classifies "${message}" as ${kind}`, function () {
        expect(classifyRpcError(new Error(message))).to.equal(kind);
      });
    }

    it("takes the -32005 limit code as a rate limit when the message does not speak of results", function () {
      expect(classifyRpcError({ message: "limit", code: -32005 })).to.equal("rate-limited");
      expect(classifyRpcError({ message: "query returned more than 10000 results", code: -32005 })).to.equal(
        "too-many-results",
      );
    });
  });

  describe("suggestedRange", function () {
    it("reads the range a provider suggests", function () {
      expect(suggestedRange(new Error("Try with this block range [0x10, 0x20]."))).to.deep.equal({ from: 16, to: 32 });
      expect(suggestedRange(new Error("too many results"))).to.equal(undefined);
    });
  });

  describe("RpcClient over HTTP", function () {
    let server: http.Server;
    let url: string;
    let answer: (method: string) => unknown;

    before(async function () {
      server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (chunk) => (body += chunk));
        req.on("end", () => {
          const request = JSON.parse(body) as { id: number; method: string };
          const reply = answer(request.method);
          res.writeHead(200, { "content-type": "application/json" });
          res.end(
            typeof reply === "string"
              ? reply
              : JSON.stringify({ jsonrpc: "2.0", id: request.id, ...(reply as object) }),
          );
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    after(function () {
      server.close();
    });

    it("parses a well-formed answer", async function () {
      answer = () => ({ result: "0x7a69" });
      expect(await new RpcClient(url).chainId()).to.equal(31337);
    });

    it("raises a classified error for a JSON-RPC error and reports it", async function () {
      answer = () => ({ error: { code: -32000, message: "query returned more than 10000 results" } });
      const seen: string[] = [];
      const client = new RpcClient(url, { onError: (method, kind) => seen.push(`${method}:${kind}`) });
      const error = await client
        .getLogs({ address: "0x" + "11".repeat(20), fromBlock: 0, toBlock: 10 })
        .catch((e: RpcError) => e);
      expect(error).to.be.instanceOf(RpcError);
      expect((error as RpcError).kind).to.equal("too-many-results");
      expect(seen).to.deep.equal(["eth_getLogs:too-many-results"]);
    });

    it("rejects a malformed answer with a clear message", async function () {
      answer = () => ({ result: { number: "0x1", hash: "0x1234" } });
      const error = await new RpcClient(url).getBlock(1).catch((e: RpcError) => e);
      expect((error as RpcError).kind).to.equal("malformed");
      expect((error as RpcError).message).to.match(
        /eth_getBlockByNumber: malformed answer at hash: expected a 32-byte hash/,
      );
    });

    it("rejects a body that is not JSON", async function () {
      answer = () => "<html>502 Bad Gateway</html>";
      const error = await new RpcClient(url).blockNumber().catch((e: RpcError) => e);
      expect((error as RpcError).message).to.match(/eth_blockNumber: HTTP 200 with a non-JSON body/);
    });

    it("times out a node that does not answer", async function () {
      answer = () => new Promise(() => {});
      const slow = http.createServer(() => {});
      await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
      const client = new RpcClient(`http://127.0.0.1:${(slow.address() as AddressInfo).port}`, { timeoutMs: 200 });
      const error = await client.blockNumber().catch((e: RpcError) => e);
      slow.closeAllConnections();
      slow.close();
      expect((error as RpcError).kind).to.equal("timeout");
    });

    it("reports an unreachable node as unreachable", async function () {
      const error = await new RpcClient("http://127.0.0.1:9", { timeoutMs: 2000 })
        .blockNumber()
        .catch((e: RpcError) => e);
      expect((error as RpcError).kind).to.equal("unreachable");
    });
  });

  describe("RpcClient on a node with queued transactions", function () {
    it("estimates gas on the latest block, not on a pending one that first runs the queue", async function () {
      // EDR (like anvil, Besu and Erigon) estimates on the pending block by default: with the keeper's own batches
      // queued, every estimate executed them all first. Here a queued transfer spends the sender's tokens: on the
      // pending block a transfer of one more token reverts, on the latest block it goes through.
      const { provider, ethers } = await network.create();
      const [sender, receiver] = await ethers.getSigners();
      const token = await ethers.deployContract("BillingToken", ["Token", "TOK", sender.address]);
      await token.mint(sender.address, 100n);
      await provider.request({ method: "evm_setAutomine", params: [false] });
      await token.transfer(receiver.address, 100n);
      const client = new RpcClient(provider);
      const transfer = {
        from: sender.address,
        to: await token.getAddress(),
        data: token.interface.encodeFunctionData("transfer", [receiver.address, 1n]),
      };
      const onPending = await client.estimateGas(transfer, "pending").catch((e: RpcError) => e);
      expect(onPending, "the pending block runs the queued transfer first").to.be.instanceOf(RpcError);
      expect((onPending as RpcError).kind).to.equal("reverted");
      expect(await client.estimateGas(transfer)).to.be.greaterThan(21_000n);
    });
  });
});
