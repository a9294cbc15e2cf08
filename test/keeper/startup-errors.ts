import { expect } from "chai";

import { MONTH } from "./support/billing-setup.js";
import { KeeperProcess, KeeperWorkspace, keeperConfig } from "./support/keeper-process.js";
import { Scenario } from "./support/scenario.js";

describe("Keeper (process)", function () {
  describe("startup problems", function () {
    this.timeout(90_000);
    let scenario: Scenario;
    const workspace = new KeeperWorkspace();

    before(async function () {
      scenario = await Scenario.start({ chain: { intervalMs: 200 }, subscriptions: 3 });
    });

    after(async function () {
      await scenario?.stop();
      workspace.remove();
    });

    function config(overrides: Record<string, unknown> = {}) {
      return keeperConfig(
        {
          rpcUrl: scenario.chain.url,
          chainId: scenario.chain.chainId,
          billingAddress: scenario.deployment.billing,
          startBlock: scenario.deployment.startBlock,
          dataDir: workspace.dataDir,
        },
        overrides,
      );
    }

    /** Runs a keeper until it exits (or 30 s); `privateKey: null` leaves the signer's variable unset. */
    async function run(configText: unknown, privateKey: string | null = scenario.deployment.operator.privateKey) {
      const keeper = KeeperProcess.start(workspace.writeConfig(configText), privateKey ?? undefined);
      const exit = await keeper.exitWithin(30_000);
      if (exit === undefined) await keeper.kill("SIGKILL");
      return { keeper, exit, output: keeper.describe(200) };
    }

    describe("a bad configuration", function () {
      it("exits with code 2 naming a missing required field", async function () {
        const { billingAddress: _omitted, ...rest } = config();
        const { exit, output } = await run(rest);
        expect(exit, output).to.deep.equal({ code: 2, signal: null });
        expect(output).to.include("billingAddress");
      });

      it("exits with code 2 naming a field of the wrong type", async function () {
        const { exit, output } = await run(config({ confirmations: "two" }));
        expect(exit, output).to.deep.equal({ code: 2, signal: null });
        expect(output).to.include("confirmations");
      });

      it("exits with code 2 on a file that is not JSON", async function () {
        const { exit, output } = await run("{ not json");
        expect(exit, output).to.deep.equal({ code: 2, signal: null });
      });

      it("exits with code 2 when the signer's variable is not set, without printing any key", async function () {
        const { exit, output } = await run(config(), null);
        expect(exit, output).to.deep.equal({ code: 2, signal: null });
        expect(output).to.include("KEEPER_TEST_PRIVATE_KEY");
        expect(output).to.not.include(scenario.deployment.operator.privateKey.slice(2));
      });
    });

    describe("the chain", function () {
      it("refuses a chain whose id differs from the configured one, naming both", async function () {
        const { exit, output } = await run(config({ chainId: 1 }));
        expect(exit, `keeper must stop:\n${output}`).to.not.equal(undefined);
        expect(exit!.code).to.be.oneOf([1, 2]);
        expect(output).to.match(/chain ?id/i);
        expect(output).to.include("31337");
      });

      it("reports an unreachable RPC endpoint clearly instead of crash looping", async function () {
        const keeper = KeeperProcess.start(
          workspace.writeConfig(config({ rpcUrl: "http://127.0.0.1:9", rpcTimeoutMs: 500 })),
          scenario.deployment.operator.privateKey,
        );
        const exit = await keeper.exitWithin(8_000);
        if (exit === undefined) {
          // Still up: it must say so in its metrics and health, and not have died.
          await keeper.waitForStart(5000);
          await keeper.waitForMetric("keeper_rpc_errors_total", (errors) => errors > 0, 10_000);
          expect((await keeper.health()).status).to.equal(503);
          await keeper.kill("SIGTERM");
        } else {
          expect(exit.code, keeper.describe()).to.equal(1);
          expect(keeper.describe(200)).to.include("127.0.0.1:9");
        }
      });
    });

    describe("an operator that is not registered", function () {
      it("keeps running, reports keeper_operator_registered 0 and sends nothing", async function () {
        const unregistered = await Scenario.start({
          chain: { intervalMs: 200 },
          deploy: { registerOperator: false, operatorLabel: "unregistered" },
          subscriptions: 3,
        });
        try {
          const keeper = await unregistered.startKeeper();
          await unregistered.chain.warp(MONTH);
          await keeper.waitForMetric("keeper_operator_registered", (registered) => registered === 0, 20_000);
          const head = await unregistered.chain.blockNumber();
          await keeper.waitForMetric("keeper_synced_block", (block) => block >= head - 2, 20_000);
          await new Promise((resolve) => setTimeout(resolve, 2000));
          expect(keeper.running, keeper.describe()).to.equal(true);
          expect(unregistered.signedByOperator()).to.deep.equal([]);
          expect(await keeper.metric("keeper_charges_sent_total")).to.equal(0);
        } finally {
          await unregistered.stop();
        }
      });
    });
  });
});
