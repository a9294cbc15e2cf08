// Deploys the billing system from the compiled artifacts onto a TestChain and creates subscriptions in bulk.
// Setup transactions are sent without waiting and mined in full blocks, so hundreds of subscriptions take seconds.
import { readFileSync } from "node:fs";

import {
  Interface,
  Wallet,
  ZeroAddress,
  getAddress,
  getCreateAddress,
  id,
  parseEther,
  parseUnits,
  toBeHex,
} from "ethers";

import type { TestChain } from "./chain.js";

export const DAY = 24n * 60n * 60n;
export const MONTH = 30n * DAY;
export const AMOUNT = parseUnits("10", 18);
export const GRACE_PERIOD = 7n * DAY;

/** Hardhat's first default account (unlocked on the simulator): stands in for the Safe that owns the system. */
export const SAFE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/** Second default account: the merchant admin, which also receives the charges. */
export const MERCHANT_ADMIN = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

const SETUP_FEES = { maxFeePerGas: toBeHex(parseUnits("20", "gwei")), maxPriorityFeePerGas: toBeHex(1n) };
const SETUP_BASE_FEE = parseUnits("1", "gwei");

interface Artifact {
  abi: ConstructorParameters<typeof Interface>[0];
  bytecode: string;
}

/** Reads a compiled contract from `artifacts/contracts/<name>.sol/<name>.json` (run `npx hardhat build` first). */
export function readArtifact(
  name: "BillingToken" | "OperatorRegistry" | "RecurringBilling" | "test/bench/BenchSubscriber",
): Artifact {
  const file = name.split("/").at(-1);
  const path = new URL(`../../../artifacts/contracts/${name}.sol/${file}.json`, import.meta.url);
  return JSON.parse(readFileSync(path, "utf8")) as Artifact;
}

export const tokenInterface = new Interface(readArtifact("BillingToken").abi);
export const registryInterface = new Interface(readArtifact("OperatorRegistry").abi);
export const billingInterface = new Interface(readArtifact("RecurringBilling").abi);

/** A deterministic key per label, so a failing run can be replayed with the same accounts. */
export function testWallet(label: string): Wallet {
  return new Wallet(id(`recurring-billing keeper test: ${label}`));
}

interface SetupTx {
  from: string;
  to?: string;
  data: string;
  gas: bigint;
}

/**
 * Sends transactions from unlocked or impersonated accounts with explicit nonces, gas and fees (no estimation, no
 * waiting), then mines blocks until every one is in, each block at the same low base fee so a long setup does not
 * price everything else out. Restores the chain's mining mode afterwards. Throws if any transaction reverted.
 */
export async function sendInBlocks(chain: TestChain, txs: readonly SetupTx[]): Promise<string[]> {
  if (txs.length === 0) return [];
  return chain.withManualMining(async () => {
    // Nonces are read before sending: a "pending" count gets slow once the mempool holds thousands of transactions.
    const nonces = new Map<string, number>();
    for (const from of new Set(txs.map((tx) => tx.from))) nonces.set(from, await chain.nonce(from, "pending"));
    const hashes: string[] = [];
    for (const tx of txs) {
      const nonce = nonces.get(tx.from)!;
      nonces.set(tx.from, nonce + 1);
      hashes.push(
        await chain.rpc<string>("eth_sendTransaction", [
          { ...tx, gas: toBeHex(tx.gas), nonce: toBeHex(nonce), ...SETUP_FEES },
        ]),
      );
    }
    const last = hashes[hashes.length - 1];
    for (let mined = 0; ; mined++) {
      if (mined > txs.length) throw new Error("setup transactions did not all get mined");
      await chain.setNextBlockBaseFee(SETUP_BASE_FEE);
      await chain.mine();
      if ((await chain.rpc("eth_getTransactionReceipt", [last])) === null) continue;
      const receipts = await Promise.all(
        hashes.map((hash) => chain.rpc<{ status: string } | null>("eth_getTransactionReceipt", [hash])),
      );
      if (receipts.some((receipt) => receipt === null)) continue;
      const failed = receipts.findIndex((receipt) => receipt?.status !== "0x1");
      if (failed >= 0) throw new Error(`setup transaction ${hashes[failed]} reverted`);
      return hashes;
    }
  });
}

async function deploy(chain: TestChain, artifact: Artifact, args: unknown[]): Promise<string> {
  const data = new Interface(artifact.abi).encodeDeploy(args).slice(2);
  const [hash] = await sendInBlocks(chain, [{ from: SAFE, data: artifact.bytecode + data, gas: 10_000_000n }]);
  const receipt = await chain.rpc<{ contractAddress: string }>("eth_getTransactionReceipt", [hash]);
  return getAddress(receipt.contractAddress);
}

export interface BillingDeployment {
  token: string;
  /** The OperatorRegistry the billing contract created. */
  registry: string;
  billing: string;
  /** Block of the first deployment transaction: where the keeper starts syncing. */
  startBlock: number;
  /** The keeper's hot key (registered unless `registerOperator: false`), funded with ETH. */
  operator: Wallet;
  merchantId: bigint;
  planId: bigint;
  period: bigint;
  amount: bigint;
}

export interface DeployOptions {
  /** ["operator"] label of the operator key, see {@link testWallet}. */
  operatorLabel?: string;
  /** [true] */
  registerOperator?: boolean;
  /** [MONTH] period of the plan. */
  period?: bigint;
}

/**
 * Deploys BillingToken and RecurringBilling (owned by SAFE; the OperatorRegistry it creates has the operator
 * registered and no guardian), then registers a merchant (admin and beneficiary MERCHANT_ADMIN) with one plan:
 * AMOUNT every `period`, first period charged at subscribe, unlimited, a backlog of one period.
 */
export async function deployBilling(chain: TestChain, options: DeployOptions = {}): Promise<BillingDeployment> {
  const operator = testWallet(options.operatorLabel ?? "operator");
  const period = options.period ?? MONTH;
  await chain.setBalance(operator.address, parseEther("1000"));
  const startBlock = (await chain.blockNumber()) + 1;
  const token = await deploy(chain, readArtifact("BillingToken"), ["Billing USD", "bUSD", SAFE]);
  const operators = options.registerOperator === false ? [] : [operator.address];
  const billing = await deploy(chain, readArtifact("RecurringBilling"), [SAFE, operators, ZeroAddress, GRACE_PERIOD]);
  const registry = getAddress((await callBilling(chain, billing, "registry"))[0] as string);
  await sendInBlocks(chain, [
    {
      from: MERCHANT_ADMIN,
      to: billing,
      data: billingInterface.encodeFunctionData("registerMerchant", [MERCHANT_ADMIN]),
      gas: 200_000n,
    },
    {
      from: MERCHANT_ADMIN,
      to: billing,
      data: billingInterface.encodeFunctionData("createPlan", [1n, token, AMOUNT, period, 0n, 0n, 1n]),
      gas: 300_000n,
    },
  ]);
  return { token, registry, billing, startBlock, operator, merchantId: 1n, planId: 1n, period, amount: AMOUNT };
}

/** Address of the `index`-th test customer: an impersonated account, no key needed. */
export function customerAddress(index: number): string {
  return getAddress(`0x${(0xc0570000n * 2n ** 128n + BigInt(index)).toString(16).padStart(40, "0")}`);
}

export interface SubscribeOptions {
  /** Number of subscriptions to create. */
  count: number;
  /** [1] subscriptions per customer (a customer may hold several). */
  perCustomer?: number;
  /** [24] periods of funding minted to each subscription. */
  fundedPeriods?: bigint;
}

/**
 * Funds customers (ETH, tokens, unlimited approval) and subscribes them to the deployment's plan; each subscription
 * pays its first period at subscribe. Returns the new subscription ids (contiguous, in creation order).
 */
export async function subscribeCustomers(
  chain: TestChain,
  deployment: BillingDeployment,
  options: SubscribeOptions,
): Promise<bigint[]> {
  const perCustomer = options.perCustomer ?? 1;
  const funded = options.fundedPeriods ?? 24n;
  const customers = Array.from({ length: Math.ceil(options.count / perCustomer) }, (_, i) => customerAddress(i));
  const firstId = (await subscriptionCount(chain, deployment.billing)) + 1n;
  const prepare: SetupTx[] = [];
  for (const customer of customers) {
    await chain.impersonate(customer);
    await chain.setBalance(customer, parseEther("100"));
    const mint = tokenInterface.encodeFunctionData("mint", [
      customer,
      deployment.amount * funded * BigInt(perCustomer),
    ]);
    const approve = tokenInterface.encodeFunctionData("approve", [deployment.billing, 2n ** 256n - 1n]);
    prepare.push({ from: SAFE, to: deployment.token, data: mint, gas: 100_000n });
    prepare.push({ from: customer, to: deployment.token, data: approve, gas: 100_000n });
  }
  await sendInBlocks(chain, prepare);
  const subscribe = billingInterface.encodeFunctionData("subscribe", [deployment.planId]);
  const subscribes: SetupTx[] = [];
  for (let i = 0; i < options.count; i++) {
    subscribes.push({
      from: customers[Math.floor(i / perCustomer)],
      to: deployment.billing,
      data: subscribe,
      gas: 250_000n,
    });
  }
  // Chunks keep the mempool small: the simulator slows down when it holds many thousands of transactions.
  for (let i = 0; i < subscribes.length; i += 5000) await sendInBlocks(chain, subscribes.slice(i, i + 5000));
  const lastId = await subscriptionCount(chain, deployment.billing);
  if (lastId - firstId + 1n !== BigInt(options.count)) {
    throw new Error(`expected ${options.count} new subscriptions, got ${lastId - firstId + 1n}`);
  }
  return Array.from({ length: options.count }, (_, i) => firstId + BigInt(i));
}

/**
 * Like {@link subscribeCustomers} for a million: each customer is a `BenchSubscriber` contract that takes its
 * `perCustomer` subscriptions in its constructor (tokens minted to its address beforehand), so a million
 * subscriptions cost two transactions per customer instead of one per subscription (the simulator keeps every
 * transaction in memory: a million `subscribe` transactions outgrew 24 GiB). Blocks keep the chain's gas limit, so
 * they are as dense as a real chain allows. Returns the new subscription ids (contiguous, by customer).
 */
export async function subscribeInBulk(
  chain: TestChain,
  deployment: BillingDeployment,
  options: SubscribeOptions,
): Promise<{ ids: bigint[]; customers: string[] }> {
  const perCustomer = options.perCustomer ?? 100;
  const funded = options.fundedPeriods ?? 24n;
  const count = Math.ceil(options.count / perCustomer);
  const firstId = (await subscriptionCount(chain, deployment.billing)) + 1n;
  const deployer = customerAddress(2 ** 40);
  await chain.impersonate(deployer);
  await chain.setBalance(deployer, parseEther("1000000"));
  const firstNonce = await chain.nonce(deployer, "pending");
  const artifact = readArtifact("test/bench/BenchSubscriber");
  const factory = new Interface(artifact.abi);
  const customers = Array.from({ length: count }, (_, i) =>
    getCreateAddress({ from: deployer, nonce: firstNonce + i }),
  );
  // Tokens first (every mint mined), then the customers that spend them in their constructors.
  const mints: SetupTx[] = customers.map((customer) => ({
    from: SAFE,
    to: deployment.token,
    data: tokenInterface.encodeFunctionData("mint", [customer, deployment.amount * funded * BigInt(perCustomer)]),
    gas: 100_000n,
  }));
  const deploys: SetupTx[] = customers.map((_, i) => {
    const subscriptions = Math.min(perCustomer, options.count - i * perCustomer);
    const args = factory.encodeDeploy([deployment.billing, deployment.token, deployment.planId, subscriptions]);
    return {
      from: deployer,
      data: artifact.bytecode + args.slice(2),
      gas: 300_000n + 95_000n * BigInt(subscriptions),
    };
  });
  for (const txs of [mints, deploys]) {
    for (let i = 0; i < txs.length; i += 2000) await sendInBlocks(chain, txs.slice(i, i + 2000));
  }
  const lastId = await subscriptionCount(chain, deployment.billing);
  if (lastId - firstId + 1n !== BigInt(options.count)) {
    throw new Error(`expected ${options.count} new subscriptions, got ${lastId - firstId + 1n}`);
  }
  return { ids: Array.from({ length: options.count }, (_, i) => firstId + BigInt(i)), customers };
}

/** The ref (`RecurringBilling.SubscriptionRef`) of a subscription made by {@link subscribeCustomers}. */
export function subscriptionRef(deployment: BillingDeployment, id: bigint, customer: string) {
  return { id, customer, amount: deployment.amount, token: deployment.token };
}

/** The customer {@link subscribeCustomers} used for its `index`-th subscription (0-based) with `perCustomer`. */
export function customerOfSubscription(index: number, perCustomer = 1): string {
  return customerAddress(Math.floor(index / perCustomer));
}

/** Reads a view of the billing contract through eth_call. */
export async function callBilling(chain: TestChain, billing: string, fn: string, args: unknown[] = []) {
  const data = billingInterface.encodeFunctionData(fn, args);
  const result = await chain.rpc<string>("eth_call", [{ to: billing, data }, "latest"]);
  return billingInterface.decodeFunctionResult(fn, result);
}

export async function subscriptionCount(chain: TestChain, billing: string): Promise<bigint> {
  return (await callBilling(chain, billing, "subscriptionCount"))[0] as bigint;
}
