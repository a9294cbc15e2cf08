// When the scheduler may send: not before the sync has reached the head once since the start (the store is still
// being filled), then also while the sync trails the head by a few dozen blocks (a keeper that fills blocks makes
// them dense with its own Charged events, and waiting for the sync would leave the next blocks empty), but not while
// it is far behind (after an outage). Every send is observed with the keeper's synced block and the chain's head at
// that moment; every period is charged once.
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";
import { pino } from "pino";

import { InProcessEventBus } from "../../../keeper/src/bus/event-bus.js";
import { parseConfig } from "../../../keeper/src/config.js";
import { Keeper } from "../../../keeper/src/keeper.js";
import type { Eip1193Provider } from "../../../keeper/src/rpc.js";
import { PrivateKeySigner } from "../../../keeper/src/signer.js";
import { PgliteDb } from "../../../keeper/src/store/index.js";
import { billingInterface } from "../../../keeper/src/sync/decode.js";
import { deployThreeSubscriptions, PERIOD } from "../support/three-subscriptions.js";

const { ethers, networkHelpers, provider } = await network.create();
/** Blocks per eth_getLogs range: the sync moves one block per step, 20 per pass while far behind. */
const RANGE = 1;
/** The keeper's pause between passes once it has nothing to do: the test changes the chain in such a pause. */
const POLL_MS = 1500;
/** keeper.ts SCHEDULE_WITHIN_BLOCKS. */
const WITHIN = 64;

/**
 * `blocks` blocks, the last one a period later (one by one: EDR's bulk `hardhat_mine` blocks change hash between
 * reads), so that the keeper, when it looks next, is `blocks` behind and finds the subscriptions due.
 */
async function mine(blocks: number): Promise<void> {
  for (let i = 1; i < blocks; i++) await provider.request({ method: "evm_mine", params: [] });
  await provider.request({ method: "evm_increaseTime", params: [Number(PERIOD)] });
  await provider.request({ method: "evm_mine", params: [] });
}

async function waitFor(condition: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("Keeper: when the scheduler sends while the sync trails the head", function () {
  this.timeout(120_000);

  it("waits for the first catch-up, sends while a few dozen blocks behind, waits again when far behind", async function () {
    const operator = new PrivateKeySigner(Wallet.createRandom().privateKey);
    const { billingAddress, startBlock, billing } = await deployThreeSubscriptions(
      { ethers, networkHelpers },
      operator.address,
    );
    // A history of 50 blocks before the period falls due: the first sync takes three passes, the first ending 30
    // blocks behind (a distance at which a keeper that had caught up before would send).
    await mine(50);

    const sends: { synced: number; head: number }[] = [];
    // Set once the keeper exists (the provider is made first).
    const running: { keeper?: Keeper } = {};
    let lastRequestAt = Date.now();
    const observed: Eip1193Provider = {
      request: async ({ method, params }) => {
        lastRequestAt = Date.now();
        if (method === "eth_sendRawTransaction" && running.keeper !== undefined) {
          const [synced] = (await running.keeper.metrics.syncedBlock.get()).values;
          sends.push({ synced: synced?.value ?? -1, head: await ethers.provider.getBlockNumber() });
        }
        return provider.request({ method, params: params as unknown[] });
      },
    };
    const config = parseConfig({
      chainId: 31337,
      billingAddress,
      startBlock,
      confirmations: 0,
      txConfirmations: 1,
      pollIntervalMs: POLL_MS,
      logRange: { initial: RANGE, min: 1, max: RANGE },
      signer: { type: "env", variable: "UNUSED_KEEPER_KEY" },
      metrics: { port: 0 },
      logLevel: "silent",
    });
    /** Runs `fn` while the keeper pauses between passes (nothing asked for 200 ms): it sees fn's blocks at once. */
    const whileIdle = async (fn: () => Promise<void>) => {
      await waitFor(async () => Date.now() - lastRequestAt > 200, "the keeper idle");
      await fn();
    };
    const db = await PgliteDb.open();
    const keeper = new Keeper({
      config,
      signer: operator,
      provider: observed,
      db,
      bus: new InProcessEventBus(),
      logger: pino({ level: process.env.TEST_LOG ?? "silent" }),
    });
    running.keeper = keeper;
    // Charged events so far: the first period of each was paid at subscribe.
    const charged = async () => (await billing.queryFilter(billing.filters.Charged())).length;
    try {
      await keeper.start();
      // 1. First sync: the three subscriptions are due all along; nothing is sent before the sync reached the head.
      await waitFor(async () => (await charged()) === 3 + 3, "the first period charged");
      expect(sends.length).to.be.greaterThan(0);
      for (const send of sends) expect(send.synced, "synced block at the first send").to.be.at.least(send.head - 1);

      // 2. 40 blocks on and a period later: the keeper, caught up before, sends while it still trails.
      sends.length = 0;
      await whileIdle(() => mine(40));
      await waitFor(async () => (await charged()) === 9, "the second period charged");
      const trailing = sends.filter((send) => send.head - send.synced > RANGE);
      expect(trailing.length, `sends ${JSON.stringify(sends)}`).to.be.greaterThan(0);

      // 3. Far behind (200 blocks, after an outage): no send until the sync is within 64 blocks of the head.
      sends.length = 0;
      await whileIdle(() => mine(200));
      await waitFor(async () => (await charged()) === 12, "the third period charged");
      expect(sends.length).to.be.greaterThan(0);
      for (const send of sends)
        expect(send.head - send.synced, "blocks behind at a send").to.be.at.most(WITHIN + RANGE);

      // Every period of every subscription charged once, nothing charged twice or skipped.
      const events = await billing.queryFilter(billing.filters.Charged());
      const perSubscription = new Map<bigint, number>();
      for (const event of events) {
        const id = billingInterface.parseLog(event)!.args.subscriptionId as bigint;
        perSubscription.set(id, (perSubscription.get(id) ?? 0) + 1);
      }
      expect([...perSubscription.values()]).to.deep.equal([4, 4, 4]);
      expect(await billing.queryFilter(billing.filters.ChargeSkipped())).to.deep.equal([]);
    } finally {
      await keeper.stop();
      await db.close();
    }
  });
});
