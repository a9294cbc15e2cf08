import { expect } from "chai";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

import { deployBilling, MONTH, subscribeCustomers } from "../support/billing-setup.js";
import { TestChain } from "../support/chain.js";
import { KEY_VARIABLE, KeeperProcess, keeperConfig, KeeperWorkspace } from "../support/keeper-process.js";
import { BUNDLE, buildBundle, NODE } from "./support.js";

/** An HTTP JSON-RPC forwarder whose upstream can be switched: a node restarted behind the same URL. */
async function switchableEndpoint(initial: string) {
  let upstream = initial;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      fetch(upstream, { method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) })
        .then(async (response) => {
          const text = await response.text();
          res.writeHead(response.status, { "content-type": "application/json" });
          res.end(text);
        })
        .catch(() => res.destroy());
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    switchTo: (url: string) => (upstream = url),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A fresh chain with the same id and, deployed the same way, the same contract addresses. */
async function freshChain(): Promise<{ chain: TestChain; billing: string; privateKey: string; startBlock: number }> {
  const chain = await TestChain.start({ intervalMs: 200 });
  const deployment = await deployBilling(chain);
  await subscribeCustomers(chain, deployment, { count: 2 });
  return {
    chain,
    billing: deployment.billing,
    privateKey: deployment.operator.privateKey,
    startBlock: deployment.startBlock,
  };
}

describe("Keeper (chain reset)", function () {
  this.timeout(180_000);
  const workspace = new KeeperWorkspace();
  const chains: TestChain[] = [];
  let endpoint: Awaited<ReturnType<typeof switchableEndpoint>>;

  before(async function () {
    await buildBundle();
  });

  after(async function () {
    await endpoint?.close();
    for (const chain of chains) await chain.close();
    workspace.remove();
  });

  it("stops with one line saying the chain was reset and how to start over, at start and while running (exit 3)", async function () {
    const first = await freshChain();
    chains.push(first.chain);
    endpoint = await switchableEndpoint(first.chain.url);
    const dataDir = path.join(workspace.dir, "data");
    const configPath = workspace.writeConfig(
      keeperConfig({
        rpcUrl: endpoint.url,
        chainId: first.chain.chainId,
        billingAddress: first.billing,
        startBlock: first.startBlock,
        dataDir,
      }),
    );
    const start = () =>
      KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", configPath], { [KEY_VARIABLE]: first.privateKey });

    const keeper = start();
    try {
      await keeper.waitForLog("store ready: syncing", 60_000);
      await first.chain.warp(MONTH);
      await keeper.waitForMetric("keeper_charges_confirmed_total", (n) => n >= 2, 60_000);

      // The node restarts: same chain id, same addresses, another chain (a new genesis block).
      const second = await freshChain();
      chains.push(second.chain);
      const genesis = async (chain: TestChain) =>
        (await chain.rpc<{ hash: string }>("eth_getBlockByNumber", ["0x0", false])).hash;
      expect(await genesis(second.chain)).to.not.equal(await genesis(first.chain));
      expect(second.billing).to.equal(first.billing);
      endpoint.switchTo(second.chain.url);

      const exit = await keeper.exitWithin(30_000);
      expect(exit, `keeper still running on the new chain:\n${keeper.describe()}`).to.deep.equal({
        code: 3,
        signal: null,
      });
      const stderr = keeper.output.join("").trim().split("\n");
      expect(stderr, keeper.output.join("")).to.have.length(1);
      expect(stderr[0])
        .to.match(/^chain reset: /)
        .and.include("To start over")
        .and.include(dataDir);
      expect(keeper.logs.filter((line) => /nonce too high/i.test(JSON.stringify(line)))).to.deep.equal([]);
    } finally {
      if (keeper.running) await keeper.kill("SIGKILL");
    }

    // Started again on the same store: refuses at once with the same line (no loop, no retries).
    const again = start();
    try {
      const exit = await again.exitWithin(30_000);
      expect(exit, again.describe()).to.deep.equal({ code: 3, signal: null });
      expect(again.output.join("")).to.match(/^chain reset: .*genesis/);
      expect(again.logs.some((line) => line.msg === "store ready: syncing")).to.equal(false);
    } finally {
      if (again.running) await again.kill("SIGKILL");
    }
  });
});
