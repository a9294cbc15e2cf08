// Named fixtures shared by every contract test. They run on one network connection, created here, so that
// `loadFixture` snapshots are shared across files: import `ethers` and `networkHelpers` from this module rather than
// calling `network.create()` again in a test that uses these fixtures.
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import { network } from "hardhat";

import { signPermit as signPermitWith } from "../scripts/lib/permit.js";
import type { BillingToken, RecurringBilling } from "../types/ethers-contracts/index.js";

export const { ethers, networkHelpers } = await network.create();

/** Mirrors `RecurringBilling.Status`. */
export const Status = { None: 0n, Active: 1n, PastDue: 2n, Cancelled: 3n, Lapsed: 4n, Completed: 5n } as const;

/** Mirrors `RecurringBilling.SkipReason`. */
export const SkipReason = {
  UnknownSubscription: 0n,
  Unauthorized: 1n,
  NotActive: 2n,
  MerchantPaused: 3n,
  NotDue: 4n,
} as const;

export const DAY = 24n * 60n * 60n;
/** Grace period of the deployed billing contract. */
export const GRACE_PERIOD = 7n * DAY;
/** Terms of the fixture plans. */
export const AMOUNT = ethers.parseUnits("10", 18);
export const PERIOD = 30n * DAY;
export const TRIAL = 14n * DAY;
export const MAX_CHARGES = 3n;
/** Backlog of the fixture plans: a late charge may catch up three periods; older ones are forgiven. */
export const MAX_BACKLOG = 3n;
/** What each fixture customer is minted: enough for many periods. */
export const CUSTOMER_FUNDS = AMOUNT * 100n;

/** A subscription's address in the v2 ABI: its id and the terms that locate its storage word. */
export interface SubscriptionRef {
  id: bigint;
  customer: string;
  amount: bigint;
  token: string;
}

/**
 * The ref of the subscription created by `tx`, read from its `Subscribed` event (as a keeper or indexer would).
 * Throws when the transaction created none.
 */
export async function refFromReceipt(
  billing: RecurringBilling,
  tx: Promise<ContractTransactionResponse> | ContractTransactionResponse,
): Promise<SubscriptionRef> {
  const receipt = await (await tx).wait();
  for (const log of receipt?.logs ?? []) {
    const event = billing.interface.parseLog(log);
    if (event?.name === "Subscribed") {
      const { subscriptionId, customer, amount, token } = event.args;
      return { id: subscriptionId, customer, amount, token };
    }
  }
  throw new Error("the transaction emitted no Subscribed event");
}

/** `customer` subscribes to `planId`; returns the new subscription's ref. */
export async function subscribe(
  billing: RecurringBilling,
  customer: HardhatEthersSigner,
  planId: bigint,
): Promise<SubscriptionRef> {
  return refFromReceipt(billing, billing.connect(customer).subscribe(planId));
}

/** A ref that addresses nothing: the id of `ref` with other terms (or any field changed by `change`). */
export function otherRef(ref: SubscriptionRef, change: Partial<SubscriptionRef>): SubscriptionRef {
  return { ...ref, ...change };
}

/** When `ref`'s next period is due. */
export async function nextChargeAt(billing: RecurringBilling, ref: SubscriptionRef): Promise<bigint> {
  return (await billing.getSubscription(ref)).nextChargeAt;
}

/** The status of `ref` (Status.None when it addresses no subscription). */
export async function statusOf(billing: RecurringBilling, ref: SubscriptionRef): Promise<bigint> {
  return (await billing.getSubscription(ref)).status;
}

/**
 * Deploys the token and the billing contract (owned by `safe`, with `operator` registered and `guardian` set), which
 * creates the registry. No merchant exists yet.
 */
export async function deployBillingFixture() {
  const [safe, guardian, operator, merchantAdmin, beneficiary, customer, customer2, customer3, outsider, otherAdmin] =
    await ethers.getSigners();
  const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", safe.address]);
  const billing = await ethers.deployContract("RecurringBilling", [
    safe.address,
    [operator.address],
    guardian.address,
    GRACE_PERIOD,
  ]);
  const registry = await ethers.getContractAt("OperatorRegistry", await billing.registry());
  return {
    token,
    registry,
    billing,
    safe,
    guardian,
    operator,
    merchantAdmin,
    beneficiary,
    customer,
    customers: [customer, customer2, customer3],
    outsider,
    otherAdmin,
  };
}

/**
 * A merchant (id `merchantId`, administered by `merchantAdmin`, paying `beneficiary`) with three plans in the token,
 * all with a backlog of MAX_BACKLOG: `planId` (AMOUNT every PERIOD, charged at subscribe, unlimited), `trialPlanId`
 * (same, first charge after TRIAL) and `cappedPlanId` (same as `planId`, MAX_CHARGES periods in total).
 */
export async function merchantWithPlanFixture() {
  const base = await deployBillingFixture();
  const { billing, token, merchantAdmin, beneficiary } = base;
  const admin = billing.connect(merchantAdmin);
  await admin.registerMerchant(beneficiary.address);
  const merchantId = await billing.merchantCount();
  const tokenAddress = await token.getAddress();
  await admin.createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG);
  const planId = await billing.planCount();
  await admin.createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, TRIAL, 0n, MAX_BACKLOG);
  const trialPlanId = await billing.planCount();
  await admin.createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, 0n, MAX_CHARGES, MAX_BACKLOG);
  const cappedPlanId = await billing.planCount();
  return { ...base, tokenAddress, merchantId, planId, trialPlanId, cappedPlanId };
}

/** Mints CUSTOMER_FUNDS to `customer` and approves the billing contract for an unlimited amount. */
export async function fundAndApprove(
  token: BillingToken,
  safe: HardhatEthersSigner,
  customer: HardhatEthersSigner,
  spender: string,
) {
  await token.connect(safe).mint(customer.address, CUSTOMER_FUNDS);
  await token.connect(customer).approve(spender, ethers.MaxUint256);
}

/**
 * Every customer funded, approved and subscribed to `planId` (first period paid at subscribe).
 * `refs[i]` belongs to `customers[i]`; `ref` is the first customer's.
 */
export async function subscribedFixture() {
  const base = await merchantWithPlanFixture();
  const { billing, token, safe, customers, planId } = base;
  const billingAddress = await billing.getAddress();
  const refs: SubscriptionRef[] = [];
  for (const customer of customers) {
    await fundAndApprove(token, safe, customer, billingAddress);
    refs.push(await subscribe(billing, customer, planId));
  }
  return { ...base, refs, ref: refs[0] };
}

/** Like {subscribedFixture}, with the first subscription's next period due now. */
export async function dueFixture() {
  const base = await subscribedFixture();
  await networkHelpers.time.increaseTo(await nextChargeAt(base.billing, base.ref));
  return base;
}

/** Signs an EIP-2612 permit of `token` from `holder` to `spender` (see scripts/lib/permit.ts). */
export const signPermit = (
  token: BillingToken,
  holder: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
  nonce?: bigint,
) => signPermitWith(token, holder, spender, value, deadline, nonce);
