// Three keeper processes, each with its own registered operator key, share one PostgreSQL store and publish to one
// RabbitMQ exchange. Judged only by the chain (Charged/ChargeSkipped events, receipts, nonces) and by what the example
// consumer ended up with.
import { expect } from "chai";
import amqp from "amqplib";
import type { Wallet } from "ethers";
import { parseEther } from "ethers";

import { ChargedConsumer, ChargedLedger, openPgliteDatabase } from "../../../keeper/src/bus/charged-consumer.js";
import type { SqlDatabase } from "../../../keeper/src/bus/charged-consumer.js";
import {
  createTestDatabase,
  deleteAmqpObjects,
  RABBITMQ_URL,
  requirePostgres,
  requireRabbitMq,
  uniqueName,
  waitUntil,
} from "../bus/services.js";
import { TcpProxy } from "../bus/tcp-proxy.js";
import {
  type BillingDeployment,
  billingInterface,
  deployBilling,
  MONTH,
  registryInterface,
  SAFE,
  sendInBlocks,
  subscribeCustomers,
  testWallet,
} from "../support/billing-setup.js";
import { TestChain } from "../support/chain.js";
import { chargeProblems, chargedEvents, nonceProblems } from "../support/chain-evidence.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { KeeperProcess, KeeperWorkspace, keeperConfig } from "../support/keeper-process.js";
import { operatorWork, total } from "./operator-evidence.js";

const SUBSCRIPTIONS = 3000;
const INSTANCES = 3;
/** Months charged by the keepers (period 0 is paid at subscribe). */
const MONTHS = 2;
const LEASE_TTL_SECONDS = 10;

describe("Keeper scale-out (PostgreSQL store, RabbitMQ bus)", function () {
  this.timeout(300_000);

  before(async function () {
    await requirePostgres();
    await requireRabbitMq();
  });

  describe("three instances with their own operator keys", function () {
    let chain: TestChain;
    let deployment: BillingDeployment;
    let ids: bigint[];
    let operators: Wallet[];
    let rpcProxy: FaultProxy;
    let brokerProxy: TcpProxy;
    let database: { url: string; drop: () => Promise<void> };
    let ledgerDb: SqlDatabase;
    let ledger: ChargedLedger;
    let consumer: ChargedConsumer | undefined;
    const workspace = new KeeperWorkspace();
    const exchange = uniqueName("test-scale-out");
    const queue = uniqueName("test-scale-out-ledger");
    const keepers: KeeperProcess[] = [];

    before(async function () {
      const started = Date.now();
      // Blocks every 200 ms and no automine: several charges share a block, as on a real chain.
      chain = await TestChain.start({ automine: false, intervalMs: 200 });
      deployment = await deployBilling(chain);
      operators = [
        deployment.operator,
        ...Array.from({ length: INSTANCES - 1 }, (_, i) => testWallet(`scale-out operator ${i + 2}`)),
      ];
      for (const operator of operators.slice(1)) await chain.setBalance(operator.address, parseEther("1000"));
      await sendInBlocks(chain, [
        {
          from: SAFE,
          to: deployment.registry,
          data: registryInterface.encodeFunctionData("rotateOperators", [[], operators.slice(1).map((o) => o.address)]),
          gas: 300_000n,
        },
      ]);
      ids = await subscribeCustomers(chain, deployment, { count: SUBSCRIPTIONS });
      rpcProxy = await FaultProxy.start(chain.url, { seed: 0 });
      database = await createTestDatabase();
      brokerProxy = await TcpProxy.start({ host: "127.0.0.1", port: Number(new URL(RABBITMQ_URL).port || 5672) });

      // The queue exists before anything is published, so no event is unroutable.
      const connection = await amqp.connect(RABBITMQ_URL);
      const channel = await connection.createChannel();
      await channel.assertExchange(exchange, "topic", { durable: true });
      await channel.assertQueue(queue, { durable: true });
      await channel.bindQueue(queue, exchange, "*.Charged");
      await channel.bindQueue(queue, exchange, "*.Charged.removed");
      await connection.close();
      ledgerDb = await openPgliteDatabase();
      ledger = new ChargedLedger(ledgerDb);
      await ledger.migrate();
      consumer = await ChargedConsumer.start({ url: RABBITMQ_URL, exchange, queue, ledger });
      console.log(`      setup: ${SUBSCRIPTIONS} subscriptions in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

    after(async function () {
      for (const keeper of keepers) if (keeper.running) await keeper.kill("SIGKILL");
      await consumer?.close().catch(() => {});
      await ledgerDb?.close().catch(() => {});
      await brokerProxy?.close();
      await rpcProxy?.close();
      await chain?.close();
      await database?.drop();
      await deleteAmqpObjects({ exchanges: [exchange], queues: [queue] }).catch(() => {});
      workspace.remove();
    });

    function startKeeper(index: number): KeeperProcess {
      const config = keeperConfig(
        {
          rpcUrl: rpcProxy.url,
          chainId: chain.chainId,
          billingAddress: deployment.billing,
          startBlock: deployment.startBlock,
          dataDir: workspace.dataDir,
        },
        {
          store: { postgresUrl: database.url },
          bus: { rabbitmqUrl: brokerProxy.rewrite(RABBITMQ_URL), exchange, publishTimeoutMs: 60_000 },
          instanceId: `keeper-${index + 1}`,
          leases: { ttlSeconds: LEASE_TTL_SECONDS },
        },
      );
      const keeper = KeeperProcess.start(
        workspace.writeConfig(config, `keeper-${index + 1}.json`),
        operators[index].privateKey,
      );
      keepers.push(keeper);
      return keeper;
    }

    const chainCharges = () => chargedEvents(chain, deployment.billing, deployment.startBlock);
    // Counted range by range, once a second: the chain runs in this process, and reading thousands of logs over and
    // over would starve it (and the keepers) of CPU.
    const counted = { charges: 0, nextBlock: 0 };
    async function countCharges(): Promise<number> {
      const head = await chain.blockNumber();
      const from = Math.max(counted.nextBlock, deployment.startBlock);
      if (head >= from) {
        const logs = await chain.rpc<unknown[]>("eth_getLogs", [
          {
            address: deployment.billing,
            topics: [billingInterface.getEvent("Charged")!.topicHash],
            fromBlock: `0x${from.toString(16)}`,
            toBlock: `0x${head.toString(16)}`,
          },
        ]);
        counted.charges += logs.length;
        counted.nextBlock = head + 1;
      }
      return counted.charges;
    }

    async function waitForCharges(count: number, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      await waitUntil(
        `${count} Charged events on chain`,
        async () => {
          const crashed = keepers.find((keeper) => !keeper.running && !killed.has(keeper));
          if (crashed) throw new Error(`a keeper exited:\n${crashed.describe()}`);
          if ((await countCharges()) >= count) return true;
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, Math.max(0, deadline - Date.now()))));
          return false;
        },
        timeoutMs,
      ).catch((error: Error) => {
        const logs = keepers.map((keeper, i) => `keeper-${i + 1}:\n${keeper.describe(8)}`).join("\n");
        throw new Error(`${error.message}\n${logs}`);
      });
    }
    const killed = new Set<KeeperProcess>();

    /** The instance that syncs (and publishes) now, by its keeper_sync_leader gauge. */
    async function leader(): Promise<KeeperProcess> {
      let found: KeeperProcess | undefined;
      await waitUntil("one keeper holds the sync lease", async () => {
        const live = keepers.filter((keeper) => keeper.running);
        const flags = await Promise.all(live.map((keeper) => keeper.metric("keeper_sync_leader").catch(() => 0)));
        const leaders = live.filter((_, i) => flags[i] === 1);
        found = leaders.length === 1 ? leaders[0] : undefined;
        return found !== undefined;
      });
      return found!;
    }

    it("charges every due period exactly once with disjoint work, survives a SIGKILLed sync leader and a cut broker connection, and delivers every Charged event", async function () {
      const started = Date.now();
      for (let i = 0; i < INSTANCES; i++) startKeeper(i);
      await Promise.all(keepers.map((keeper) => keeper.waitForStart(60_000)));
      const firstLeader = await leader();

      // Month 1: cut the broker while charging, then SIGKILL the sync leader midway.
      await chain.warp(MONTH);
      await waitForCharges(SUBSCRIPTIONS + SUBSCRIPTIONS / 6, 120_000);
      brokerProxy.cut();
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      brokerProxy.restore();
      await waitForCharges(SUBSCRIPTIONS + SUBSCRIPTIONS / 2, 120_000);
      killed.add(firstLeader);
      expect((await firstLeader.kill("SIGKILL")).signal).to.equal("SIGKILL");
      const killedAt = (await countCharges()) - SUBSCRIPTIONS;
      await waitForCharges(2 * SUBSCRIPTIONS, 120_000);
      const secondLeader = await leader();
      expect(secondLeader).to.not.equal(firstLeader);

      // Month 2: the two survivors alone.
      await chain.warp(MONTH);
      await waitForCharges((MONTHS + 1) * SUBSCRIPTIONS, 120_000);
      const survivors = keepers.filter((keeper) => keeper.running);
      for (const keeper of survivors) await keeper.waitForMetric("keeper_pending_txs", (n) => n === 0, 30_000);
      const charges = await chainCharges();

      // Every Charged event on chain reaches the consumer, exactly once in effect.
      await waitUntil(
        "the consumer holds every Charged event",
        async () => {
          const revenue = await ledger.revenue();
          return revenue.reduce((sum, row) => sum + row.charges, 0) >= charges.length;
        },
        60_000,
      );
      const revenue = await ledger.revenue();
      const expectedTotal = deployment.amount * BigInt(charges.length);
      expect(
        revenue.reduce((sum, row) => sum + row.charges, 0),
        "charges in the ledger",
      ).to.equal(charges.length);
      expect(
        revenue.reduce((sum, row) => sum + row.total, 0n),
        "revenue in the ledger",
      ).to.equal(expectedTotal);
      const processed = new Set((await ledger.events()).filter((state) => state.applied).map((state) => state.eventId));
      const onChainIds = await chargedEventIds(chain, deployment.billing, deployment.startBlock);
      expect(
        onChainIds.filter((id) => !processed.has(id)),
        "Charged events the consumer never saw",
      ).to.deep.equal([]);
      expect(brokerProxy.cuts, "the broker connection was cut").to.be.greaterThan(0);

      // The chain: each due period paid once, clean nonce streams, work split, little waste.
      expect(chargeProblems(charges, ids, MONTHS + 1)).to.deep.equal([]);
      for (const operator of operators) {
        expect(await nonceProblems(chain, operator.address, rpcProxy.transactions), operator.address).to.deep.equal([]);
      }
      const work = await operatorWork(
        chain,
        deployment.billing,
        operators.map((o) => o.address),
        deployment.startBlock,
      );
      const sent = total(work.itemsSent);
      const wastedPercent = (100 * work.wasted) / sent;
      for (const operator of operators) {
        expect(work.charged.get(operator.address.toLowerCase()) ?? 0, `charges by ${operator.address}`).to.be.above(0);
      }
      expect(total(work.charged), "charges by the keepers").to.equal(MONTHS * SUBSCRIPTIONS);
      expect(wastedPercent, "wasted charge attempts, %").to.be.below(1);

      const perKey = operators.map((o) => work.charged.get(o.address.toLowerCase()) ?? 0);
      console.log(
        `      charges ${total(work.charged)} in ${total(work.transactions)} txs (per key ${perKey.join("/")}), ` +
          `items sent ${sent}, wasted ${work.wasted} (${wastedPercent.toFixed(2)} %: ${work.skipped} skipped, ` +
          `${work.reverted} reverted), leader SIGKILLed after ${killedAt} month-1 charges, broker cut ${brokerProxy.cuts}x`,
      );
      console.log(
        `      consumer: ${consumer!.stats.delivered} delivered, ${consumer!.stats.applied} applied, ` +
          `${consumer!.stats.duplicates} duplicates absorbed, ${consumer!.stats.undone} undone; ` +
          `run ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );

      for (const keeper of survivors) {
        expect(await keeper.kill("SIGTERM"), `graceful stop:\n${keeper.describe()}`).to.deep.equal({
          code: 0,
          signal: null,
        });
      }
    });
  });
});

/** Idempotency keys (`chainId:blockHash:txHash:logIndex`) of every Charged event of `billing`. */
async function chargedEventIds(chain: TestChain, billing: string, fromBlock: number): Promise<string[]> {
  const logs = await chain.rpc<{ blockHash: string; transactionHash: string; logIndex: string }[]>("eth_getLogs", [
    {
      address: billing,
      topics: [billingInterface.getEvent("Charged")!.topicHash],
      fromBlock: `0x${fromBlock.toString(16)}`,
      toBlock: "latest",
    },
  ]);
  return logs.map((log) => `${chain.chainId}:${log.blockHash}:${log.transactionHash}:${Number(log.logIndex)}`);
}
