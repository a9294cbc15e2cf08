// Several RPC endpoints at start: every one must serve the configured chain, and a bad list is refused in one line.
import { expect } from "chai";

import { TestChain } from "./support/chain.js";
import { KeeperProcess, KeeperWorkspace, keeperConfig } from "./support/keeper-process.js";

describe("Keeper (process)", function () {
  describe("rpc.urls at start", function () {
    this.timeout(60_000);
    const workspace = new KeeperWorkspace();
    let chain: TestChain;
    let otherChain: TestChain;

    before(async function () {
      chain = await TestChain.start();
      otherChain = await TestChain.start({ chainId: 1337 });
    });

    after(async function () {
      await chain?.close();
      await otherChain?.close();
      workspace.remove();
    });

    async function run(rpc: Record<string, unknown>) {
      const config = keeperConfig(
        {
          rpcUrl: chain.url,
          chainId: chain.chainId,
          billingAddress: "0x" + "11".repeat(20),
          startBlock: 0,
          dataDir: workspace.dataDir,
        },
        { rpc },
      );
      const keeper = KeeperProcess.start(workspace.writeConfig(config), "0x" + "01".repeat(32));
      const exit = await keeper.exitWithin(30_000);
      if (exit === undefined) await keeper.kill("SIGKILL");
      return { exit, output: keeper.describe(200) };
    }

    it("refuses to start when one endpoint serves another chain, naming the entry", async function () {
      const { exit, output } = await run({ urls: [chain.url, otherChain.url] });
      expect(exit, output).to.deep.equal({ code: 2, signal: null });
      expect(output).to.include(`rpc.urls.1: #1 ${otherChain.url} serves chain 1337, but the config says 31337`);
    });

    it("refuses a duplicate entry in one line naming it", async function () {
      const { exit, output } = await run({ urls: [chain.url, chain.url] });
      expect(exit, output).to.deep.equal({ code: 2, signal: null });
      expect(output).to.include("rpc.urls.1: duplicate of entry 0");
    });
  });
});
