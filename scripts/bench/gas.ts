// `npm run bench:gas`: gas used per full transaction (receipt.gasUsed, so the 21,000 base and calldata included) by the
// billing paths, in BillingToken, against the targets. Conditions are the realistic steady state, never flattered:
// customers approve a finite allowance (so every charge writes it), the beneficiary already holds tokens, each charge
// is of a second or later period, and nothing is warmed up inside the measured transaction.
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse, Signer } from "ethers";
import { network } from "hardhat";
import { signPermit } from "../lib/permit.js";
import { formatProfile, profileTransaction } from "./gas-profile.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

const AMOUNT = ethers.parseUnits("10", 18);
const PERIOD = 30n * 24n * 60n * 60n;
/** Periods each customer pre-authorizes: a finite allowance, as a careful customer would grant. */
const APPROVED_PERIODS = 12n;
const BATCH_SIZES = [1, 10, 100];

interface Row {
  operation: string;
  gas: bigint;
  items: number;
  /** Upper bound on gas per item, if this operation has a target. */
  target?: bigint;
}

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1) throw new Error("benchmark transaction failed");
  return receipt.gasUsed;
}

const [safe, operator, merchantAdmin, beneficiary, seedCustomer] = await ethers.getSigners();
const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", safe.address]);
const tokenAddress = await token.getAddress();
const billing = await ethers.deployContract("RecurringBilling", [
  safe.address,
  [operator.address],
  ethers.ZeroAddress,
  604_800n,
]);
const billingAddress = await billing.getAddress();
const registryAddress = await billing.registry();

await billing.connect(merchantAdmin).registerMerchant(beneficiary.address);
await billing.connect(merchantAdmin).createPlan(1n, tokenAddress, AMOUNT, PERIOD, 0n, 0n, 1n);
const planId = await billing.planCount();

/** A subscription's ref: its id and the terms that locate its storage. */
type Ref = { id: bigint; customer: string; token: string; amount: bigint };

/** A fresh customer with ETH for gas and tokens for every approved period. */
async function newCustomer(): Promise<Signer> {
  const wallet = ethers.Wallet.createRandom(ethers.provider);
  await networkHelpers.setBalance(wallet.address, ethers.parseEther("1"));
  await token.connect(safe).mint(wallet.address, AMOUNT * APPROVED_PERIODS);
  return wallet;
}

async function refOf(customer: Signer): Promise<Ref> {
  return {
    id: await billing.subscriptionCount(),
    customer: await customer.getAddress(),
    token: tokenAddress,
    amount: AMOUNT,
  };
}

async function approveAndSubscribe(customer: Signer): Promise<Ref> {
  await token.connect(customer).approve(billingAddress, AMOUNT * APPROVED_PERIODS);
  await billing.connect(customer).subscribe(planId);
  return refOf(customer);
}

// The beneficiary is funded by a first subscriber, so no measurement pays for its zero-to-nonzero balance write.
await token.connect(safe).mint(seedCustomer.address, AMOUNT * APPROVED_PERIODS);
await approveAndSubscribe(seedCustomer);

const rows: Row[] = [];

// subscribe: approval in its own transaction beforehand; the first period is charged inside subscribe.
const subscriber = await newCustomer();
await token.connect(subscriber).approve(billingAddress, AMOUNT * APPROVED_PERIODS);
rows.push({ operation: "subscribe", gas: await gasOf(billing.connect(subscriber).subscribe(planId)), items: 1 });
const steadyRef = await refOf(subscriber);

// subscribeWithPermit: approval and subscription in one transaction (the permit's first nonce write included).
const permitter = (await newCustomer()) as HardhatEthersSigner;
const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
const permit = await signPermit(token, permitter, billingAddress, AMOUNT * APPROVED_PERIODS, deadline);

rows.push({
  operation: "subscribeWithPermit",
  gas: await gasOf(
    billing
      .connect(permitter)
      .subscribeWithPermit(planId, AMOUNT * APPROVED_PERIODS, deadline, permit.v, permit.r, permit.s),
  ),
  items: 1,
});

// Batches: distinct customers per item, subscribed now, so each item is a second-period charge after one warp.
const batches: Ref[][] = [];
for (const size of BATCH_SIZES) {
  const ids: Ref[] = [];
  for (let i = 0; i < size; i++) ids.push(await approveAndSubscribe(await newCustomer()));
  batches.push(ids);
}

// For comparison: a customer who approved an unlimited allowance, so the token skips its allowance write.
const unlimited = await newCustomer();
await token.connect(unlimited).approve(billingAddress, ethers.MaxUint256);
await billing.connect(unlimited).subscribe(planId);
const unlimitedRef = await refOf(unlimited);

await networkHelpers.time.increase(PERIOD);

// charge: steady state (period 1, beneficiary funded, allowance decreasing), by the operator.
const steadyCharge = await (await billing.connect(operator).charge(steadyRef)).wait();
if (steadyCharge === null || steadyCharge.status !== 1) throw new Error("benchmark transaction failed");
rows.push({ operation: "charge (period 2+)", gas: steadyCharge.gasUsed, items: 1, target: 56_000n });
const steadyProfile = await profileTransaction(
  connection.provider,
  steadyCharge.hash,
  billingAddress,
  steadyCharge.gasUsed,
  {
    [billingAddress.toLowerCase()]: "RecurringBilling",
    [registryAddress.toLowerCase()]: "OperatorRegistry",
    [(await token.getAddress()).toLowerCase()]: "BillingToken",
  },
);

rows.push({
  operation: "charge (unlimited allowance)",
  gas: await gasOf(billing.connect(operator).charge(unlimitedRef)),
  items: 1,
});

for (const ids of batches) {
  rows.push({
    operation: `chargeMany(${ids.length})`,
    gas: await gasOf(billing.connect(operator).chargeMany(ids)),
    items: ids.length,
    target: ids.length === 100 ? 23_600n : undefined,
  });
}

rows.push({ operation: "cancel", gas: await gasOf(billing.connect(subscriber).cancel(steadyRef)), items: 1 });

const format = (value: bigint) => value.toLocaleString("en-US");
const table = [["operation", "gas (tx)", "gas / item", "target / item", "result"]];
let missed = 0;
for (const row of rows) {
  const perItem = row.gas / BigInt(row.items);
  const met = row.target === undefined || perItem <= row.target;
  if (!met) missed++;
  table.push([
    row.operation,
    format(row.gas),
    format(perItem),
    row.target === undefined ? "" : `<= ${format(row.target)}`,
    row.target === undefined ? "" : met ? "PASS" : "MISS",
  ]);
}
const widths = table[0].map((_, column) => Math.max(...table.map((cells) => cells[column].length)));
const line = (cells: string[]) =>
  cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join("  ");
console.log(
  `Gas per full transaction (receipt.gasUsed), RecurringBilling + BillingToken, on ${connection.networkName}:`,
);
console.log(line(table[0]));
console.log(widths.map((width) => "-".repeat(width)).join("  "));
for (const cells of table.slice(1)) console.log(line(cells));
console.log(missed === 0 ? "All targets met." : `${missed} target(s) missed.`);
console.log("\nWhere the steady-state charge's gas goes (debug_traceTransaction):");
for (const text of formatProfile(steadyProfile)) console.log(text);
await connection.close();
