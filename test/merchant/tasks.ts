import { expect } from "chai";

import { ethers, merchantFixture, networkHelpers, runJson, runTask } from "./support.js";

const DAY = 86_400n;

interface Created {
  merchantId?: string;
  planId?: string;
}

/** A merchant (account 1, paid to account 2) with a 9.99 TUSD / 30 days plan and both customers subscribed. */
async function businessFixture() {
  const base = await merchantFixture();
  const common = { billing: base.billingAddress };
  const merchant = await runJson<Created>("merchant:register", {
    ...common,
    account: "1",
    beneficiary: base.beneficiary.address,
  });
  const plan = await runJson<Created>("plans:create", {
    ...common,
    account: "1",
    merchant: merchant.merchantId,
    token: base.tokenAddress,
    amount: "9.99",
    period: "30d",
    trial: "0",
    cap: "12",
    maxBacklog: "1",
  });
  for (const customer of [base.customerA, base.customerB])
    await base.billing.connect(customer).subscribe(BigInt(plan.planId!));
  const refs = await Promise.all(
    [1n, 2n].map(async (id) => {
      const [log] = await base.billing.queryFilter(base.billing.filters.Subscribed(id));
      return { id, customer: log.args.customer, amount: log.args.amount, token: log.args.token };
    }),
  );
  return { ...base, common, merchantId: merchant.merchantId!, planId: plan.planId!, refs };
}

describe("Merchant tasks", function () {
  it("registers a merchant and creates a plan from token units and a period in days", async function () {
    const { billing, beneficiary, merchantAdmin, merchantId, planId, tokenAddress } =
      await networkHelpers.loadFixture(businessFixture);
    const merchant = await billing.getMerchant(merchantId);
    expect(merchant.admin).to.equal(merchantAdmin.address);
    expect(merchant.billing.beneficiary).to.equal(beneficiary.address);
    const plan = await billing.getPlan(planId);
    expect(plan.token).to.equal(tokenAddress);
    expect(plan.amount).to.equal(ethers.parseUnits("9.99", 18));
    expect(plan.period).to.equal(30n * DAY);
    expect(plan.maxCharges).to.equal(12n);
    expect(plan.maxBacklog).to.equal(1n);
  });

  it("lists plans and subscriptions with their state, next due time and pages", async function () {
    const { common, billing, refs, customerB } = await networkHelpers.loadFixture(businessFixture);
    const plans = await runJson<Array<{ planId: string; amountFormatted: string; symbol: string; active: boolean }>>(
      "plans:list",
      {
        ...common,
        merchant: "1",
      },
    );
    expect(plans.map((plan) => [plan.planId, plan.amountFormatted, plan.symbol, plan.active])).to.deep.equal([
      ["1", "9.99", "TUSD", true],
    ]);

    type Page = {
      total: number;
      subscriptions: Array<{ id: string; status: string; nextChargeAt: string; paidPeriods: string }>;
    };
    const all = await runJson<Page>("subscriptions:list", { ...common, merchant: "1", limit: "50", offset: "0" });
    expect(all.total).to.equal(2);
    for (const [index, row] of all.subscriptions.entries()) {
      const state = await billing.getSubscription(refs[index]);
      expect([row.id, row.status, row.nextChargeAt, row.paidPeriods]).to.deep.equal([
        String(refs[index].id),
        "active",
        String(state.nextChargeAt),
        "1",
      ]);
    }
    const second = await runJson<Page>("subscriptions:list", { ...common, merchant: "1", limit: "1", offset: "1" });
    expect(second.subscriptions.map((row) => row.id)).to.deep.equal(["2"]);
    const byCustomer = await runJson<Page>("subscriptions:list", {
      ...common,
      customer: customerB.address,
      limit: "50",
      offset: "0",
    });
    expect(byCustomer.subscriptions.map((row) => row.id)).to.deep.equal(["2"]);

    const human = await runTask("subscriptions:list", { ...common, merchant: "1", limit: "1", offset: "0" });
    expect(human.output).to.match(
      /subscription 1 {2}merchant 1 {2}plan 1 .* active {2}paid 1\/12 .* next due \d{4}-\d{2}-\d{2}T/,
    );
    expect(human.output).to.contain("1-1 of 2 (next page: --offset 1).");
  });

  it("shows a failed payment as past due and reports revenue per plan over a date range, as JSON and CSV", async function () {
    const { common, billing, token, operator, refs, customerB, billingAddress } =
      await networkHelpers.loadFixture(businessFixture);
    const afterSubscribe = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 1n;
    await token.connect(customerB).approve(billingAddress, 0n);
    await networkHelpers.time.increase(30n * DAY);
    await billing.connect(operator).chargeMany(refs);

    type Page = { subscriptions: Array<{ id: string; status: string }> };
    const pastDue = await runJson<Page>("subscriptions:list", {
      ...common,
      status: "past-due",
      limit: "50",
      offset: "0",
    });
    expect(pastDue.subscriptions.map((row) => row.id)).to.deep.equal(["2"]);

    type Report = {
      rows: Array<{ merchantId: string; planId: string; charges: number; amount: string; amountFormatted: string }>;
    };
    const all = await runJson<Report>("revenue", { ...common, merchant: "1", from: "0", to: "", format: "table" });
    const charged = await billing.queryFilter(billing.filters.Charged());
    const onChain = charged.reduce((sum, log) => sum + log.args.amount, 0n);
    expect(all.rows).to.have.length(1);
    expect(all.rows[0]).to.include({
      merchantId: "1",
      planId: "1",
      charges: 3,
      amount: String(onChain),
      amountFormatted: "29.97",
    });

    const recent = await runJson<Report>("revenue", {
      ...common,
      merchant: "1",
      from: String(afterSubscribe),
      to: "",
      format: "table",
    });
    expect(recent.rows[0]).to.include({ charges: 1, amountFormatted: "9.99" });

    const csv = await runTask("revenue", { ...common, merchant: "1", from: "2000-01-01", to: "", format: "csv" });
    expect(csv.success).to.equal(true);
    const lines = csv.output.split("\n");
    expect(lines[0]).to.equal("merchant_id,plan_id,token,symbol,charges,amount_base_units,amount");
    expect(lines[1]).to.equal(`1,1,${await token.getAddress()},TUSD,3,${onChain},29.97`);
  });

  it("cancels as the customer, pauses and resumes, changes the beneficiary and closes a plan", async function () {
    const { common, billing, refs, beneficiary, outsider } = await networkHelpers.loadFixture(businessFixture);
    const cancelled = await runJson<{ id: string }>("subscriptions:cancel", { ...common, account: "3", id: "1" });
    expect(cancelled.id).to.equal("1");
    expect((await billing.getSubscription(refs[0])).status).to.equal(3n);

    await runJson("merchant:pause", { ...common, account: "1", merchant: "1" });
    expect((await billing.getMerchant(1n)).billing.paused).to.equal(true);
    await runJson("merchant:resume", { ...common, account: "1", merchant: "1" });
    expect((await billing.getMerchant(1n)).billing.paused).to.equal(false);

    const changed = await runJson<{ previousBeneficiary: string }>("merchant:beneficiary", {
      ...common,
      account: "1",
      merchant: "1",
      beneficiary: outsider.address,
    });
    expect(changed.previousBeneficiary).to.equal(beneficiary.address);
    expect((await billing.getMerchant(1n)).billing.beneficiary).to.equal(outsider.address);

    await runJson("plans:close", { ...common, account: "1", plan: "1" });
    expect((await billing.getPlan(1n)).active).to.equal(false);
    const plans = await runJson<Array<{ active: boolean }>>("plans:list", { ...common, merchant: "" });
    expect(plans.map((plan) => plan.active)).to.deep.equal([false]);
  });

  describe("bad input: one line naming the problem, nothing sent", function () {
    const cases: Array<[string, string, Record<string, string>, string]> = [
      [
        "plans:create",
        "too many decimals",
        { amount: "1.0000000000000000001" },
        "--amount: 1.0000000000000000001 has more than the token's 18 decimals",
      ],
      [
        "plans:create",
        "an amount that is not a number",
        { amount: "ten" },
        '--amount: "ten" is not an amount (token units, e.g. 9.99)',
      ],
      ["plans:create", "a zero amount", { amount: "0" }, "--amount: the amount must be above zero"],
      [
        "plans:create",
        "an unknown period unit",
        { period: "30x" },
        '--period: "30x" is not a duration (seconds, or e.g. 30d, 1w, 12h, 15m)',
      ],
      ["plans:create", "a period under a minute", { period: "59" }, "--period: 59s is shorter than 1m"],
      ["plans:create", "a backlog of zero", { maxBacklog: "0" }, "--max-backlog: 0 is outside 1..255"],
      [
        "plans:create",
        "an account that does not administer the merchant",
        { account: "3" },
        "is not merchant 1's admin",
      ],
      [
        "plans:create",
        "an unknown merchant",
        { merchant: "9" },
        "merchant 9 does not exist (merchant:register creates one)",
      ],
      [
        "plans:create",
        "an account index the network does not have",
        { account: "99" },
        "--account 99: the network has",
      ],
      [
        "plans:create",
        "a token address with a bad checksum",
        { token: "0x5fbDB2315678afecb367f032d93F642f64180aa3" },
        '--token: "0x5fbDB2315678afecb367f032d93F642f64180aa3"',
      ],
      [
        "plans:create",
        "a token with no code",
        { token: "0x000000000000000000000000000000000000dEaD" },
        "--token: no contract at 0x000000000000000000000000000000000000dEaD",
      ],
      [
        "merchant:pause",
        "a merchant id that is not a number",
        { merchant: "one" },
        '--merchant: "one" is not a whole number',
      ],
      ["merchant:resume", "resuming a running merchant", { merchant: "1" }, "merchant 1's billing is already running"],
      [
        "merchant:register",
        "the billing contract as beneficiary",
        { beneficiary: "BILLING" },
        "--beneficiary: the billing contract itself cannot be paid",
      ],
      ["plans:close", "an unknown plan", { plan: "7" }, "plan 7 does not exist"],
      ["subscriptions:cancel", "an outsider cancelling", { account: "5", id: "1" }, "may not cancel subscription 1"],
      ["subscriptions:cancel", "an unknown subscription", { id: "42" }, "subscription 42 does not exist"],
      ["subscriptions:list", "an unbounded page", { limit: "5000" }, "--limit: 5000 is outside 1..1000"],
      [
        "subscriptions:list",
        "an unknown status",
        { status: "paused" },
        '--status: "paused" is not one of active, past-due, cancelled, lapsed, completed',
      ],
      ["revenue", "an unknown format", { format: "xml" }, '--format: "xml" is not one of table, csv, json'],
      [
        "revenue",
        "a range that ends before it starts",
        { from: "2026-02-01", to: "2026-01-01" },
        "--from 2026-02-01T00:00:00Z is not before --to 2026-01-01T00:00:00Z",
      ],
      ["revenue", "a date that is not a date", { from: "yesterday" }, '--from: "yesterday" is not a date'],
    ];
    const defaults: Record<string, Record<string, string>> = {
      "plans:create": { account: "1", merchant: "1", amount: "5", period: "1w", trial: "0", cap: "0", maxBacklog: "1" },
      "merchant:pause": { account: "1", merchant: "1" },
      "merchant:resume": { account: "1", merchant: "1" },
      "merchant:register": { account: "1", beneficiary: "" },
      "plans:close": { account: "1", plan: "1" },
      "subscriptions:cancel": { account: "3", id: "1", fromBlock: "" },
      "subscriptions:list": { merchant: "", customer: "", status: "", limit: "50", offset: "0", fromBlock: "" },
      revenue: { merchant: "", from: "", to: "", format: "table", fromBlock: "" },
    };
    for (const [name, what, overrides, message] of cases) {
      it(`${name}: ${what}`, async function () {
        const { common, tokenAddress, billingAddress } = await networkHelpers.loadFixture(businessFixture);
        const args: Record<string, unknown> = { ...common, ...defaults[name], ...overrides };
        if (name === "plans:create" && overrides.token === undefined) args.token = tokenAddress;
        if (args.beneficiary === "BILLING") args.beneficiary = billingAddress;
        const before = await ethers.provider.getBlockNumber();
        const result = await runTask(name, args);
        expect(result.success, result.output).to.equal(false);
        expect(result.output.split("\n")).to.have.length(1);
        expect(result.output).to.contain(message);
        expect(result.output).to.match(/^Error: /);
        expect(await ethers.provider.getBlockNumber()).to.equal(before);
      });
    }
  });
});
