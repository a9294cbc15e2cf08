// The end-to-end story behind `npm run demo`: deploy, subscribe, bill month by month with the real keeper, survive a
// leaked operator key, rotate it through the Safe, and prove from the chain that every claim held.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { ethers } from "ethers";
import type { NetworkConnection } from "hardhat/types/network";

import BillingTokenModule from "../../deploy/modules/BillingToken.js";
import RecurringBillingSystemModule from "../../deploy/modules/RecurringBillingSystem.js";
import { parseConfig } from "../../keeper/src/config.js";
import { createLogger, Keeper } from "../../keeper/src/keeper.js";
import { PrivateKeySigner } from "../../keeper/src/signer.js";
import { deployLocalSafe } from "../../tasks/safe/lib/local-safe.js";
import { createProposal, executeProposal, type ExecutionResult, signProposal } from "../../tasks/safe/lib/proposal.js";
import { signPermit } from "../lib/permit.js";
import { runLeakDrill, type SubscriptionRef } from "./leak-drill.js";
import type { Narrator } from "./ui.js";

const DAY = 24n * 60n * 60n;
const MONTH = 30n * DAY;
const UNIT = 10n ** 18n;
const ETH = 10n ** 18n;

export interface DemoOptions {
  /** Customers per merchant. */
  customersPerMerchant: number;
  /** Every n-th customer subscribes with an EIP-2612 permit instead of approve + subscribe. */
  permitEvery: number;
  /** Months billed in total; the leak drill and the rotation happen after month `incidentAfterMonth`. */
  months: number;
  incidentAfterMonth: number;
  keeperLogLevel: "silent" | "error" | "warn" | "info";
  /**
   * [undefined: no console] Called once the story is told, with the billing console's URL while the last keeper
   * still runs; the keeper stops when the returned promise settles (`--serve` waits for Ctrl-C there).
   */
  onConsole?: (url: string) => Promise<void>;
}

export const DEFAULT_DEMO_OPTIONS: DemoOptions = {
  customersPerMerchant: 18,
  permitEvery: 3,
  months: 6,
  incidentAfterMonth: 3,
  keeperLogLevel: (process.env.DEMO_KEEPER_LOG as DemoOptions["keeperLogLevel"]) ?? "error",
};

interface MerchantSetup {
  name: string;
  admin: ethers.HDNodeWallet;
  beneficiary: string;
  merchantId: bigint;
  planId: bigint;
  amount: bigint;
}

interface Customer {
  wallet: ethers.HDNodeWallet;
  merchant: MerchantSetup;
  subscriptionId: bigint;
  /** What the contract takes to address the subscription. */
  ref: SubscriptionRef;
}

/** `RecurringBilling.Status`. */
const Status = { Active: 1, PastDue: 2, Cancelled: 3, Lapsed: 4 } as const;

const fmt = (amount: bigint) => `${ethers.formatUnits(amount, 18)} bUSD`;

/** Runs the whole story on `connection`, reporting through `narrator`; resolves when it is over. */
export async function runDemo(connection: NetworkConnection, narrator: Narrator, options: DemoOptions): Promise<void> {
  const { ethers: hhEthers, networkHelpers, ignition, provider } = connection;
  const chain = new ethers.BrowserProvider(provider, undefined, { cacheTimeout: -1 });
  const { chainId } = await chain.getNetwork();
  const [deployer] = await hhEthers.getSigners();
  const fund = async (address: string) => networkHelpers.setBalance(address, 10n * ETH);
  const newWallet = async () => {
    const wallet = ethers.Wallet.createRandom().connect(chain);
    await fund(wallet.address);
    return wallet;
  };

  // ------------------------------------------------------------------ 1. deploy
  narrator.heading("Deploy: a 2-of-3 Safe, the billing contract with its operator registry, and a token");
  const owners = [await newWallet(), await newWallet(), await newWallet()];
  const safe = await deployLocalSafe({ deployer, owners: owners.map((o) => o.address), threshold: 2 });
  narrator.say(`Safe ${safe.safeAddress} (owners ${owners.map((o) => short(o.address)).join(", ")}, threshold 2)`);
  const operatorKey = await newWallet();
  // A fresh Ignition deployment per run, so the demo can run again against the same `hardhat node`.
  const deploymentId = `demo-${Date.now()}`;
  // The keeper syncs from the first block that can hold the billing contract.
  const startBlock = (await chain.getBlockNumber()) + 1;
  const { billing: billingDeployed, registry: registryDeployed } = await ignition.deploy(RecurringBillingSystemModule, {
    parameters: {
      RecurringBilling: {
        owner: safe.safeAddress,
        initialOperators: [operatorKey.address],
        gracePeriod: 20n * DAY,
      },
    },
    deploymentId,
  });
  const { token: tokenDeployed } = await ignition.deploy(BillingTokenModule, { deploymentId });
  const billing = new ethers.Contract(await billingDeployed.getAddress(), billingDeployed.interface, chain);
  const registry = new ethers.Contract(await registryDeployed.getAddress(), registryDeployed.interface, chain);
  const token = new ethers.Contract(await tokenDeployed.getAddress(), tokenDeployed.interface, chain);
  narrator.say(`OperatorRegistry ${registry.target}  RecurringBilling ${billing.target}  BillingToken ${token.target}`);
  narrator.check(
    "the Safe owns the registry and the billing contract",
    (await registry.owner()) === safe.safeAddress && (await billing.owner()) === safe.safeAddress,
  );
  narrator.check(
    "the keeper's key is the only operator",
    (await registry.isOperator(operatorKey.address)) === true &&
      (await registry.operatorCount()) === 1n &&
      (await billing.isOperator(operatorKey.address)) === true,
  );

  // --------------------------------------------------- 2. merchants and customers
  narrator.heading("Merchants publish monthly plans; customers subscribe (some with a permit)");
  const merchants: MerchantSetup[] = [];
  for (const [name, price] of [
    ["Acme Streaming", 10n * UNIT],
    ["Globex Cloud", 25n * UNIT],
  ] as const) {
    const admin = await newWallet();
    const beneficiary = ethers.Wallet.createRandom().address;
    const asAdmin = billing.connect(admin) as ethers.Contract;
    await (await asAdmin.registerMerchant(beneficiary)).wait();
    const merchantId = (await billing.merchantCount()) as bigint;
    // maxBacklog 1: a late charge collects the current period only; older ones are forgiven.
    await (await asAdmin.createPlan(merchantId, token.target, price, MONTH, 0, 0, 1)).wait();
    const planId = (await billing.planCount()) as bigint;
    merchants.push({ name, admin, beneficiary, merchantId, planId, amount: price });
    narrator.say(`${name}: merchant #${merchantId}, plan #${planId} at ${fmt(price)} every 30 days`);
  }

  const total = options.customersPerMerchant * merchants.length;
  const bar = narrator.progress("subscribing customers", total);
  const customers: Customer[] = [];
  const tokenAsDeployer = token.connect(deployer) as ethers.Contract;
  const tokenAsPermit = {
    name: () => token.name() as Promise<string>,
    nonces: (owner: string) => token.nonces(owner) as Promise<bigint>,
    getAddress: async () => String(token.target),
  };
  for (let i = 0; i < total; i++) {
    const merchant = merchants[i % merchants.length]!;
    const wallet = await newWallet();
    // Customer #0 of each merchant is funded for two periods only: the third charge must fail.
    const funds = i < merchants.length ? 2n * merchant.amount : BigInt(options.months + 2) * merchant.amount;
    await (await tokenAsDeployer.mint(wallet.address, funds)).wait();
    const asCustomer = billing.connect(wallet) as ethers.Contract;
    const allowance = BigInt(options.months + 2) * merchant.amount;
    if (i % options.permitEvery === 0) {
      const deadline = BigInt((await chain.getBlock("latest"))!.timestamp) + 3600n;
      const signature = await signPermit(tokenAsPermit, wallet, String(billing.target), allowance, deadline);
      await (
        await asCustomer.subscribeWithPermit(
          merchant.planId,
          allowance,
          deadline,
          signature.v,
          signature.r,
          signature.s,
        )
      ).wait();
    } else {
      await (await (token.connect(wallet) as ethers.Contract).approve(billing.target, allowance)).wait();
      await (await asCustomer.subscribe(merchant.planId)).wait();
    }
    const subscriptionId = (await billing.subscriptionCount()) as bigint;
    const ref = { id: subscriptionId, customer: wallet.address, amount: merchant.amount, token: String(token.target) };
    customers.push({ wallet, merchant, subscriptionId, ref });
    bar.tick();
  }
  bar.stop();
  const permits = customers.filter((_, i) => i % options.permitEvery === 0).length;
  narrator.say(`${total} subscriptions (${permits} in one transaction with a permit); month 1 paid at subscribe`);

  // ---------------------------------------------------------------- 3. billing
  narrator.heading("The keeper bills month after month while the chain's time advances");
  const dataDir = await mkdtemp(path.join(tmpdir(), "billing-demo-"));
  const startKeeper = async (key: string) => {
    const config = parseConfig({
      chainId: Number(chainId),
      billingAddress: String(billing.target),
      startBlock,
      confirmations: 1,
      pollIntervalMs: 50,
      store: { dataDir },
      signer: { type: "env", variable: "KEEPER_PRIVATE_KEY" },
      metrics: { port: 0 },
      // The billing console on a free loopback port: the story's charges, failures and revenue as a web page.
      ...(options.onConsole ? { console: { port: 0 } } : {}),
      logLevel: options.keeperLogLevel,
    });
    const keeper = new Keeper({
      config,
      signer: new PrivateKeySigner(key),
      provider,
      logger: createLogger(options.keeperLogLevel),
    });
    await keeper.start();
    return keeper;
  };

  const lapsing = customers.slice(0, merchants.length);
  const cancelling = customers[merchants.length]!;
  const settle = async (label: string) => {
    // Mine so the keeper, which stays `confirmations` behind the head, sees everything; done when nothing is due.
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      await networkHelpers.mine();
      const now = BigInt((await chain.getBlock("latest"))!.timestamp);
      let due = 0;
      for (const c of customers) {
        const sub = await billing.getSubscription(c.ref);
        if (Number(sub.status) === Status.Active && sub.nextChargeAt <= now) due += 1;
      }
      if (due === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    narrator.check(`${label}: the keeper charged everything due within 2 minutes`, false);
    return false;
  };

  // One line per month, from the chain: what the keeper collected and what failed.
  let month = 1;
  const monthReport = async (fromBlock: number) => {
    const logs = await chain.getLogs({ address: String(billing.target), fromBlock, toBlock: "latest" });
    const names = logs.map((log) => billing.interface.parseLog(log)?.name);
    const count = (name: string) => names.filter((n) => n === name).length;
    month += 1;
    narrator.say(
      `month ${month}: ${count("Charged")} charged, ${count("ChargeFailed")} failed (past due), ` +
        `${count("SubscriptionLapsed")} lapsed, ${count("SubscriptionCancelled")} cancelled`,
    );
  };
  const billMonth = async () => {
    const fromBlock = (await chain.getBlockNumber()) + 1;
    await networkHelpers.time.increase(MONTH);
    await settle("monthly run");
    await monthReport(fromBlock);
  };

  let keeper = await startKeeper(operatorKey.privateKey);
  let execution: ExecutionResult | undefined;
  try {
    for (let i = 1; i <= options.incidentAfterMonth; i++) {
      if (i === 2) {
        await (await (billing.connect(cancelling.wallet) as ethers.Contract).cancel(cancelling.ref)).wait();
        narrator.say(`customer ${short(cancelling.wallet.address)} cancels subscription #${cancelling.subscriptionId}`);
      }
      await billMonth();
    }
    // Funded for two periods: the third charge fails (past due), and a retry after the grace period lapses them.
    const pastDue = [];
    for (const c of lapsing) pastDue.push(await statusOf(billing, c.ref));
    narrator.check(
      "customers who ran out of funds went past due, then lapsed after the 20-day grace period",
      pastDue.every((status) => status === Status.PastDue || status === Status.Lapsed),
      `${pastDue.filter((s) => s === Status.PastDue).length} past due, ` +
        `${pastDue.filter((s) => s === Status.Lapsed).length} lapsed`,
    );
    narrator.check(
      "the customer who cancelled is no longer billed",
      (await statusOf(billing, cancelling.ref)) === Status.Cancelled,
    );

    // ------------------------------------------------------------ 4. leak drill
    narrator.heading("Leak drill: the operator key is stolen; the attacker tries every abuse");
    await keeper.stop();
    narrator.say("incident: keeper stopped; the attacker now holds the operator key");
    const active = customers.find((c) => !lapsing.includes(c) && c !== cancelling)!;
    await runLeakDrill(
      {
        attacker: operatorKey,
        billing,
        registry,
        token,
        merchantId: active.merchant.merchantId,
        planId: active.merchant.planId,
        active: active.ref,
        cancelled: cancelling.ref,
        customer: active.wallet.address,
        watched: [
          ...customers.map((c) => c.wallet.address),
          ...merchants.map((m) => m.beneficiary),
          operatorKey.address,
        ],
      },
      narrator,
    );

    // ---------------------------------------------------------- 5. rotation
    narrator.heading("The Safe owners rotate the operator in one transaction");
    // Billing periods do not wait for the incident to end: a month passes before the new keeper runs.
    const incidentBlock = (await chain.getBlockNumber()) + 1;
    await networkHelpers.time.increase(MONTH);
    const newOperator = await newWallet();
    const context = { provider, contractNetworks: safe.contractNetworks };
    let proposal = await createProposal({
      ...context,
      registryAddress: String(registry.target),
      remove: [operatorKey.address],
      add: [newOperator.address],
    });
    narrator.say(`proposed: ${proposal.summary.description} (Safe nonce ${proposal.safeNonce})`);
    proposal = await signProposal({ ...context, proposal, signer: { privateKey: owners[0]!.privateKey } });
    proposal = await signProposal({ ...context, proposal, signer: { privateKey: owners[1]!.privateKey } });
    narrator.say(`signed by ${proposal.signatures.map((s) => short(s.signer)).join(" and ")}, each with its own key`);
    execution = await executeProposal({
      ...context,
      proposal,
      executor: { privateKey: owners[2]!.privateKey },
    });
    const receipt = await chain.getTransactionReceipt(execution.transactionHash);
    const rotationEvents = (receipt?.logs ?? [])
      .filter((log) => log.address.toLowerCase() === String(registry.target).toLowerCase())
      .map((log) => registry.interface.parseLog(log)?.name);
    narrator.check(
      "removal and addition landed in ONE transaction",
      rotationEvents.join(",") === "OperatorRemoved,OperatorAdded",
      `tx ${short(execution.transactionHash)}, block ${execution.blockNumber}, ${execution.gasUsed} gas`,
    );
    const oldKeyError = await billing
      .connect(operatorKey)
      .getFunction("charge")
      .staticCall(active.ref)
      .then(
        () => "succeeded",
        (error: { data?: string }) => billing.interface.parseError(error.data ?? "0x")?.name ?? "reverted",
      );
    narrator.check(
      "the leaked key can no longer charge anything",
      oldKeyError === "BillingUnauthorizedCharger",
      oldKeyError,
    );

    // ------------------------------------------------------ 6. keeper restarts
    narrator.heading("The keeper restarts with the new key and catches up");
    keeper = await startKeeper(newOperator.privateKey);
    const caughtUp = await settle("after the rotation");
    await monthReport(incidentBlock);
    narrator.check("the month that came due during the incident was charged by the new key", caughtUp);
    while (month < options.months) await billMonth();

    // ---------------------------------------------------------------- 7. summary
    await summarize({ chain, billing, token, merchants, customers, startBlock, rotation: execution! }, narrator);
    if (options.onConsole && keeper.consoleUrl) {
      // The keeper's store trails the head by its confirmations: one more block, then wait until it holds the story's
      // last block, so the console shows every charge the summary just counted.
      const last = await chain.getBlockNumber();
      await networkHelpers.mine(1);
      await waitForStoreAt(keeper.consoleUrl, last);
      await options.onConsole(keeper.consoleUrl);
    }
  } finally {
    await keeper.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Polls the billing console until the keeper's store has synced `block` (or fails after 60 s). */
async function waitForStoreAt(consoleUrl: string, block: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const overview = (await (await fetch(new URL("api/overview", consoleUrl))).json()) as {
      syncedBlock: number | null;
    };
    if ((overview.syncedBlock ?? -1) >= block) return;
    if (Date.now() > deadline) throw new Error(`the keeper's store did not reach block ${block} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface SummaryInput {
  chain: ethers.BrowserProvider;
  billing: ethers.Contract;
  token: ethers.Contract;
  merchants: MerchantSetup[];
  customers: Customer[];
  startBlock: number;
  rotation: ExecutionResult;
}

/** Reads the whole history back from the chain and checks the invariants the story promised. */
async function summarize(input: SummaryInput, narrator: Narrator): Promise<void> {
  const { chain, billing, token, merchants, customers, startBlock, rotation } = input;
  narrator.heading("Summary, read back from the chain");
  const logs = await chain.getLogs({ address: String(billing.target), fromBlock: startBlock, toBlock: "latest" });
  const parsed = logs.map((log) => ({ log, event: billing.interface.parseLog(log) }));
  const charged = parsed.filter((p) => p.event?.name === "Charged");
  const failed = parsed.filter((p) => p.event?.name === "ChargeFailed");
  const now = BigInt((await chain.getBlock("latest"))!.timestamp);

  // A Charged event carries the next due time: the period it paid is (nextChargeAt - firstChargeAt) / period - 1.
  const schedules = new Map<bigint, { firstChargeAt: bigint; period: bigint }>();
  for (const { event } of parsed) {
    if (event?.name === "Subscribed") {
      schedules.set(event.args.subscriptionId as bigint, {
        firstChargeAt: event.args.firstChargeAt as bigint,
        period: event.args.period as bigint,
      });
    }
  }
  const periodIndex = (event: ethers.LogDescription) => {
    const schedule = schedules.get(event.args.subscriptionId as bigint)!;
    return Number(((event.args.nextChargeAt as bigint) - schedule.firstChargeAt) / schedule.period - 1n);
  };
  const seen = new Set<string>();
  let duplicates = 0;
  for (const { event } of charged) {
    const key = `${event!.args.subscriptionId}:${periodIndex(event!)}`;
    if (seen.has(key)) duplicates += 1;
    seen.add(key);
  }
  narrator.check("no period was charged twice", duplicates === 0, `${charged.length} charges`);

  let overdue = 0;
  let overpaid = 0;
  for (const c of customers) {
    const sub = await billing.getSubscription(c.ref);
    if (Number(sub.status) === Status.Active && sub.nextChargeAt <= now) overdue += 1;
    const paid = charged.filter((p) => p.event!.args.subscriptionId === c.subscriptionId);
    const indices = paid.map((p) => periodIndex(p.event!)).sort((a, b) => a - b);
    // Anchored schedule: at most one period per 30 days since subscribing, paid in order with no gap.
    if (indices.some((index, i) => index !== i)) overpaid += 1;
  }
  narrator.check("every active subscription is paid up (nothing due was missed)", overdue === 0);
  narrator.check("each subscription's periods were paid in order, none skipped or repeated", overpaid === 0);

  for (const merchant of merchants) {
    const revenue = charged
      .filter((p) => p.event!.args.merchantId === merchant.merchantId)
      .reduce((sum, p) => sum + (p.event!.args.amount as bigint), 0n);
    const balance = (await token.balanceOf(merchant.beneficiary)) as bigint;
    narrator.check(
      `${merchant.name}: revenue ${fmt(revenue)} is exactly what reached its beneficiary`,
      revenue === balance,
    );
  }

  // Gas per charge, from the keeper's chargeMany transactions (subscribe-time charges excluded).
  const byTx = new Map<string, number>();
  for (const { log } of charged) byTx.set(log.transactionHash, (byTx.get(log.transactionHash) ?? 0) + 1);
  let keeperGas = 0n;
  let keeperCharges = 0;
  for (const [hash, count] of byTx) {
    const tx = await chain.getTransaction(hash);
    if (tx?.data.startsWith(billing.interface.getFunction("chargeMany")!.selector)) {
      keeperGas += (await chain.getTransactionReceipt(hash))!.gasUsed;
      keeperCharges += count;
    }
  }
  const statuses = await Promise.all(customers.map((c) => statusOf(billing, c.ref)));
  narrator.say(
    `charges made:        ${charged.length} (${keeperCharges} by the keeper in ${byTx.size - (charged.length - keeperCharges)} batches)`,
  );
  narrator.say(
    `failed charges:      ${failed.length}; past due now: ${statuses.filter((s) => s === Status.PastDue).length}; lapsed: ${statuses.filter((s) => s === Status.Lapsed).length}; cancelled: ${statuses.filter((s) => s === Status.Cancelled).length}`,
  );
  if (keeperCharges > 0)
    narrator.say(`gas per keeper charge: ${keeperGas / BigInt(keeperCharges)} (chargeMany, amortized)`);
  narrator.say(
    `operator rotation:   tx ${rotation.transactionHash} (block ${rotation.blockNumber}, ${rotation.gasUsed} gas)`,
  );
}

async function statusOf(billing: ethers.Contract, ref: SubscriptionRef): Promise<number> {
  return Number((await billing.getSubscription(ref)).status);
}

function short(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}
