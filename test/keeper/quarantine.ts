// Issue 11, finding 1 (keeper side): a subscription whose charge cannot be simulated must not hold up the others. A
// merchant's plan in a gas-bomb token comes first in the due list; the node caps simulations (as providers do), so
// every batch holding the bomb fails to simulate. The keeper bisects, quarantines the bomb (metric, log line, kept
// across a restart) and bills everyone else within their period; once the token is fixed, the bomb is billed again.
import { readFileSync } from "node:fs";

import { expect } from "chai";
import { Interface, parseEther } from "ethers";

import {
  AMOUNT,
  billingInterface,
  customerAddress,
  MERCHANT_ADMIN,
  MONTH,
  SAFE,
  sendInBlocks,
  subscribeCustomers,
  subscriptionCount,
  tokenInterface,
} from "./support/billing-setup.js";
import { type Charge, chargeProblems } from "./support/chain-evidence.js";
import type { KeeperProcess } from "./support/keeper-process.js";
import { Scenario } from "./support/scenario.js";

const DAY = 86_400n;
const OTHERS = 4;
/** Gas a simulation may use: a batch of every other subscription fits, the bomb's 200,000-gas token call does not. */
const SIMULATION_GAS_CAP = 200_000n;
const RETRY_SECONDS = DAY;

const bombArtifact = JSON.parse(
  readFileSync(
    new URL("../../artifacts/contracts/test/mocks/GasBombToken.sol/GasBombToken.json", import.meta.url),
    "utf8",
  ),
) as { abi: ConstructorParameters<typeof Interface>[0]; bytecode: string };
const bombInterface = new Interface(bombArtifact.abi);

describe("Keeper (process)", function () {
  describe("quarantine of a subscription whose charge cannot be simulated", function () {
    this.timeout(180_000);
    let scenario: Scenario;
    let bomb: string;
    let bombId: bigint;
    let others: bigint[];
    let keeper: KeeperProcess;

    before(async function () {
      scenario = await Scenario.start({
        subscriptions: 0,
        config: { quarantine: { retrySeconds: Number(RETRY_SECONDS), maxRetrySeconds: Number(4n * RETRY_SECONDS) } },
      });
      const { chain, deployment } = scenario;
      const [deployHash] = await sendInBlocks(chain, [{ from: SAFE, data: bombArtifact.bytecode, gas: 3_000_000n }]);
      bomb = (await chain.rpc<{ contractAddress: string }>("eth_getTransactionReceipt", [deployHash])).contractAddress;

      // The bomb's subscriber subscribes first (disarmed, so its first period is paid): first in the due list.
      const customer = customerAddress(1000);
      await chain.impersonate(customer);
      await chain.setBalance(customer, parseEther("10"));
      await sendInBlocks(chain, [
        {
          from: MERCHANT_ADMIN,
          to: deployment.billing,
          data: billingInterface.encodeFunctionData("createPlan", [1n, bomb, AMOUNT, MONTH, 0n, 0n, 1n]),
          gas: 300_000n,
        },
        {
          from: customer,
          to: bomb,
          data: bombInterface.encodeFunctionData("mint", [customer, AMOUNT * 10n]),
          gas: 100_000n,
        },
        {
          from: customer,
          to: bomb,
          data: tokenInterface.encodeFunctionData("approve", [deployment.billing, 2n ** 256n - 1n]),
          gas: 100_000n,
        },
        {
          from: customer,
          to: deployment.billing,
          data: billingInterface.encodeFunctionData("subscribe", [2n]),
          gas: 300_000n,
        },
      ]);
      bombId = await subscriptionCount(chain, deployment.billing);
      others = await subscribeCustomers(chain, deployment, { count: OTHERS });
      await setArmed(true);
      scenario.proxy.policy = { seed: 0, simulationGasCap: SIMULATION_GAS_CAP };
    });

    after(async function () {
      await scenario?.stop();
    });

    async function setArmed(armed: boolean) {
      await sendInBlocks(scenario.chain, [
        { from: SAFE, to: bomb, data: bombInterface.encodeFunctionData("setArmed", [armed]), gas: 100_000n },
      ]);
    }

    /** Charges of `id` for period `period`, from the chain. */
    async function chargesOf(id: bigint, period: bigint): Promise<Charge[]> {
      return (await scenario.charges()).filter((c) => c.subscriptionId === id && c.periodIndex === period);
    }

    async function until(done: () => Promise<boolean>, what: string, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${keeper?.describe()}`);
        await scenario.chain.mine();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }

    it("bills every other subscription within its period while the bomb, first in line, is quarantined", async function () {
      const { chain } = scenario;
      expect(bombId).to.equal(1n);
      await chain.warp(MONTH);
      await chain.mine();
      const dueAt = await chain.latestTimestamp();
      keeper = await scenario.startKeeper();

      await until(async () => {
        for (const id of others) if ((await chargesOf(id, 1n)).length !== 1) return false;
        return true;
      }, "the other subscriptions' second period");
      for (const id of others) {
        const [charge] = await chargesOf(id, 1n);
        const block = await chain.rpc<{ timestamp: string }>("eth_getBlockByNumber", [
          `0x${charge.blockNumber.toString(16)}`,
          false,
        ]);
        // Due at most at `dueAt` (one period after subscribing); charged before the next period falls due.
        expect(BigInt(block.timestamp), `subscription ${id} charged within its period`).to.be.below(dueAt + MONTH);
      }

      const line = await keeper.waitForLog(
        (l) => Array.isArray(l.quarantined) && l.quarantined.includes(String(bombId)),
      );
      expect(line.msg).to.contain(`quarantined subscriptions ${bombId}`);
      expect(line.quarantined).to.deep.equal([String(bombId)]);
      expect(await keeper.metric("keeper_quarantined_subscriptions", { subscription_id: String(bombId) })).to.equal(1);
      expect(await keeper.metric("keeper_quarantined_subscriptions")).to.equal(1);
      // Never sent: no charge, no failure on chain for the bomb since it fell due.
      expect(await chargesOf(bombId, 1n)).to.deep.equal([]);
      expect(scenario.signedByOperator().every((tx) => !tx.data.includes(bomb.slice(2).toLowerCase()))).to.equal(true);
    });

    it("keeps the quarantine across a restart", async function () {
      await keeper.kill("SIGKILL");
      keeper = await scenario.startKeeper();
      await keeper.waitForLog((l) => typeof l.msg === "string" && l.msg.includes("kept from before the restart"));
      await keeper.waitForMetric("keeper_quarantined_subscriptions", (v) => v === 1, 30_000, {
        subscription_id: String(bombId),
      });
      expect(await chargesOf(bombId, 1n)).to.deep.equal([]);
    });

    it("bills the subscription again once its token is fixed and the back-off is over", async function () {
      const { chain } = scenario;
      await setArmed(false);
      await chain.warp(RETRY_SECONDS + 1n);
      await chain.mine();
      await until(async () => (await chargesOf(bombId, 1n)).length === 1, "the fixed token's charge");
      await keeper.waitForMetric("keeper_quarantined_subscriptions", (v) => v === 0);
      await keeper.waitForLog("quarantined subscriptions simulate again: released");
      // Periods 0 and 1 paid exactly once by everyone, the bomb included; a clean nonce stream.
      expect(chargeProblems(await scenario.charges(), [bombId, ...others], 2)).to.deep.equal([]);
      expect(await scenario.problems(2)).to.deep.equal([]);
    });
  });
});
