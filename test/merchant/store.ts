// subscriptions:list --store: the same page from the keeper's PostgreSQL store (filled by the keeper's own event
// sync) as from the chain, and a store of another contract refused.
import { expect } from "chai";
import { pino } from "pino";

import { InProcessEventBus } from "../../keeper/src/bus/event-bus.js";
import { RpcClient } from "../../keeper/src/rpc.js";
import { bindStore, migrate, PostgresDb } from "../../keeper/src/store/index.js";
import { EventSync } from "../../keeper/src/sync/event-sync.js";
import { createTestDatabase } from "../keeper/bus/services.js";
import { merchantFixture, provider, runJson, runTask } from "./support.js";

type Page = { total: number; source: string; subscriptions: Array<Record<string, string>> };

describe("Merchant tasks reading the keeper's store", function () {
  this.timeout(120_000);
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  before(async function () {
    database = await createTestDatabase();
  });
  after(async function () {
    await database?.drop();
  });

  it("subscriptions:list --store gives the chain's answer, filtered and paged, without scanning the chain", async function () {
    const base = await merchantFixture();
    const common = { billing: base.billingAddress };
    const startBlock = (await provider.request({ method: "eth_blockNumber" })) as string;
    await runJson("merchant:register", { ...common, account: "1", beneficiary: base.beneficiary.address });
    await runJson("plans:create", {
      ...common,
      ...{ account: "1", merchant: "1", token: base.tokenAddress, amount: "3", period: "1w" },
      ...{ trial: "0", cap: "0", maxBacklog: "2" },
    });
    for (const customer of [base.customerA, base.customerB, base.customerA])
      await base.billing.connect(customer).subscribe(1n);
    await base.billing.connect(base.customerB).cancel({
      id: 2n,
      customer: base.customerB.address,
      amount: 3n * 10n ** 18n,
      token: base.tokenAddress,
    });

    const db = await PostgresDb.open(database.url);
    try {
      await migrate(db);
      await bindStore(db, 31337, base.billingAddress);
      const sync = new EventSync(
        db,
        new RpcClient(provider),
        new InProcessEventBus(),
        {
          chainId: 31337,
          address: base.billingAddress,
          startBlock: Math.max(0, Number(startBlock) - 10),
          confirmations: 0,
          reorgWindow: 64,
          range: { initial: 100, min: 1, max: 1000 },
        },
        pino({ level: "silent" }),
      );
      await sync.catchUp(100, () => false);
    } finally {
      await db.close();
    }

    for (const filter of [
      { merchant: "1", customer: "", status: "" },
      { merchant: "", customer: base.customerA.address, status: "active" },
      { merchant: "1", customer: "", status: "cancelled" },
    ]) {
      const args = { ...common, ...filter, limit: "2", offset: "0", fromBlock: "" };
      const fromChain = await runJson<Page>("subscriptions:list", { ...args, store: "" });
      const fromStore = await runJson<Page>("subscriptions:list", { ...args, store: database.url });
      expect([fromChain.source, fromStore.source]).to.deep.equal(["chain", "keeper store"]);
      expect(fromStore.total, JSON.stringify(filter)).to.equal(fromChain.total);
      expect(fromStore.subscriptions, JSON.stringify(filter)).to.deep.equal(fromChain.subscriptions);
    }

    const other = await merchantFixture();
    const refused = await runTask("subscriptions:list", {
      billing: other.billingAddress,
      ...{ merchant: "", customer: "", status: "", limit: "50", offset: "0", fromBlock: "" },
      store: database.url,
    });
    expect(refused.success).to.equal(false);
    expect(refused.output).to.equal(
      `Error: --store: that store is not a keeper's store for billing ${other.billingAddress} on chain 31337`,
    );
  });
});
