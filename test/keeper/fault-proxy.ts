import { expect } from "chai";
import { parseEther, parseUnits } from "ethers";

import { testWallet } from "./support/billing-setup.js";
import { TestChain } from "./support/chain.js";
import { type FaultPolicy, FaultProxy, INJECTED_ERROR, TOO_MANY_RESULTS, seededRandom } from "./support/fault-proxy.js";

interface Reply {
  result?: unknown;
  error?: { code: number; message: string };
}

async function call(url: string, method: string, params: unknown[] = [], timeoutMs = 5000): Promise<Reply> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return (await response.json()) as Reply;
}

describe("FaultProxy (keeper test harness)", function () {
  this.timeout(30_000);
  let chain: TestChain;
  const proxies: FaultProxy[] = [];

  async function startProxy(policy: FaultPolicy) {
    const proxy = await FaultProxy.start(chain.url, policy);
    proxies.push(proxy);
    return proxy;
  }

  before(async function () {
    chain = await TestChain.start();
    await chain.mine(20);
  });

  after(async function () {
    for (const proxy of proxies) await proxy.close();
    await chain.close();
  });

  describe("without faults", function () {
    it("forwards requests and answers as the node does", async function () {
      const proxy = await startProxy({ seed: 1 });
      expect(await call(proxy.url, "eth_chainId")).to.deep.include({ result: "0x7a69" });
      expect((await call(proxy.url, "eth_blockNumber")).result).to.equal(
        `0x${(await chain.blockNumber()).toString(16)}`,
      );
      expect(proxy.totalInjected()).to.equal(0);
      expect(proxy.received.get("eth_chainId")).to.equal(1);
    });

    it("forwards batch requests element by element", async function () {
      const proxy = await startProxy({ seed: 1 });
      const response = await fetch(proxy.url, {
        method: "POST",
        body: JSON.stringify([
          { jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] },
          { jsonrpc: "2.0", id: 2, method: "net_version", params: [] },
        ]),
      });
      const replies = (await response.json()) as (Reply & { id: number })[];
      expect(replies.map((reply) => reply.id)).to.deep.equal([1, 2]);
      expect(replies[0].result).to.equal("0x7a69");
    });
  });

  describe("errorRate", function () {
    it("answers every request with a JSON-RPC error at rate 1 and counts them", async function () {
      const proxy = await startProxy({ seed: 7, errorRate: 1 });
      for (let i = 0; i < 5; i++) {
        expect((await call(proxy.url, "eth_blockNumber")).error).to.deep.equal({
          code: -32603,
          message: INJECTED_ERROR,
        });
      }
      expect(proxy.injected.errors).to.equal(5);
    });

    it("injects about the configured share of errors, exactly as counted", async function () {
      const proxy = await startProxy({ seed: 11, errorRate: 0.3 });
      let errors = 0;
      for (let i = 0; i < 200; i++) if ((await call(proxy.url, "eth_blockNumber")).error) errors++;
      expect(errors).to.equal(proxy.injected.errors);
      expect(errors).to.be.within(35, 85);
    });

    it("makes the same decisions for the same seed", async function () {
      const pattern = async (seed: number) => {
        const proxy = await startProxy({ seed, errorRate: 0.5 });
        const outcome: boolean[] = [];
        for (let i = 0; i < 40; i++) outcome.push((await call(proxy.url, "eth_chainId")).error !== undefined);
        return outcome;
      };
      const first = await pattern(42);
      expect(await pattern(42)).to.deep.equal(first);
      expect(await pattern(43)).to.not.deep.equal(first);
    });

    it("leaves methods outside `methods` alone", async function () {
      const proxy = await startProxy({ seed: 3, errorRate: 1, methods: ["eth_getLogs"] });
      expect((await call(proxy.url, "eth_chainId")).result).to.equal("0x7a69");
      expect((await call(proxy.url, "eth_getLogs", [{ fromBlock: "0x1", toBlock: "0x1" }])).error?.message).to.equal(
        INJECTED_ERROR,
      );
    });
  });

  describe("maxLogRange", function () {
    it("refuses eth_getLogs over more blocks than allowed with the providers' message", async function () {
      const proxy = await startProxy({ seed: 1, maxLogRange: 10 });
      const wide = await call(proxy.url, "eth_getLogs", [{ fromBlock: "0x1", toBlock: "0xb" }]);
      expect(wide.error?.message).to.equal(TOO_MANY_RESULTS);
      const latest = await call(proxy.url, "eth_getLogs", [{ fromBlock: "0x0", toBlock: "latest" }]);
      expect(latest.error?.message).to.equal(TOO_MANY_RESULTS);
      expect(proxy.injected.tooManyResults).to.equal(2);
    });

    it("serves ranges within the limit", async function () {
      const proxy = await startProxy({ seed: 1, maxLogRange: 10 });
      const narrow = await call(proxy.url, "eth_getLogs", [{ fromBlock: "0x1", toBlock: "0xa" }]);
      expect(narrow.result).to.be.an("array");
      expect(proxy.injected.tooManyResults).to.equal(0);
    });
  });

  describe("stallRate", function () {
    it("holds a request past the client's timeout", async function () {
      const proxy = await startProxy({ seed: 1, stallRate: 1, stallMs: 1000 });
      const started = Date.now();
      let failure: unknown;
      await call(proxy.url, "eth_chainId", [], 200).catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(Error);
      expect(Date.now() - started).to.be.below(900);
      expect(proxy.injected.stalls).to.equal(1);
    });
  });

  describe("dropSendRate", function () {
    it("drops the response of an accepted raw transaction, which still gets mined, and records it", async function () {
      const proxy = await startProxy({ seed: 1, dropSendRate: 1 });
      const wallet = testWallet("fault-proxy sender");
      await chain.setBalance(wallet.address, parseEther("1"));
      const raw = await wallet.signTransaction({
        type: 2,
        chainId: chain.chainId,
        nonce: await chain.nonce(wallet.address),
        to: wallet.address,
        gasLimit: 21_000n,
        maxFeePerGas: parseUnits("100", "gwei"),
        maxPriorityFeePerGas: parseUnits("1", "gwei"),
      });
      let failure: unknown;
      await call(proxy.url, "eth_sendRawTransaction", [raw]).catch((error: unknown) => (failure = error));
      expect(failure, "the client must not get an answer").to.be.instanceOf(Error);
      expect(proxy.injected.droppedSends).to.equal(1);
      expect(proxy.transactions).to.have.length(1);
      expect(proxy.transactions[0]).to.include({ from: wallet.address, nonce: 0, accepted: true });
      const receipt = await chain.rpc<{ status: string } | null>("eth_getTransactionReceipt", [
        proxy.transactions[0].hash,
      ]);
      expect(receipt?.status).to.equal("0x1");
    });
  });

  describe("seededRandom", function () {
    it("is a deterministic sequence in [0, 1)", function () {
      const a = seededRandom(5);
      const b = seededRandom(5);
      const draws = Array.from({ length: 1000 }, () => a());
      expect(draws).to.deep.equal(Array.from({ length: 1000 }, () => b()));
      expect(Math.min(...draws)).to.be.at.least(0);
      expect(Math.max(...draws)).to.be.below(1);
    });
  });
});
