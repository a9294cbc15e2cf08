// Named fixtures shared by every contract test. They run on one network connection, created here, so that
// `loadFixture` snapshots are shared across files: import `ethers` and `networkHelpers` from this module rather than
// calling `network.create()` again in a test that uses these fixtures.
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { network } from "hardhat";

import { signPermit as signPermitWith } from "../scripts/lib/permit.js";
import type { BillingToken } from "../types/ethers-contracts/index.js";

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
/** What each fixture customer is minted: enough for many periods. */
export const CUSTOMER_FUNDS = AMOUNT * 100n;

/**
 * Deploys the token, the registry (owned by `safe`, with `operator` registered and `guardian` set) and the billing
 * contract (owned by `safe`). No merchant exists yet.
 */
export async function deployBillingFixture() {
  const [safe, guardian, operator, merchantAdmin, beneficiary, customer, customer2, customer3, outsider, otherAdmin] =
    await ethers.getSigners();
  const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", safe.address]);
  const registry = await ethers.deployContract("OperatorRegistry", [safe.address, [operator.address]]);
  await registry.connect(safe).setGuardian(guardian.address);
  const billing = await ethers.deployContract("RecurringBilling", [
    safe.address,
    await registry.getAddress(),
    GRACE_PERIOD,
  ]);
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
 * A merchant (id `merchantId`, administered by `merchantAdmin`, paying `beneficiary`) with three plans in the token:
 * `planId` (AMOUNT every PERIOD, charged at subscribe, unlimited), `trialPlanId` (same, first charge after TRIAL) and
 * `cappedPlanId` (same as `planId`, MAX_CHARGES periods in total).
 */
export async function merchantWithPlanFixture() {
  const base = await deployBillingFixture();
  const { billing, token, merchantAdmin, beneficiary } = base;
  const admin = billing.connect(merchantAdmin);
  await admin.registerMerchant(beneficiary.address);
  const merchantId = await billing.merchantCount();
  const tokenAddress = await token.getAddress();
  await admin.createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, 0n, 0n);
  const planId = await billing.planCount();
  await admin.createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, TRIAL, 0n);
  const trialPlanId = await billing.planCount();
  await admin.createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, 0n, MAX_CHARGES);
  const cappedPlanId = await billing.planCount();
  return { ...base, merchantId, planId, trialPlanId, cappedPlanId };
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
 * `subscriptionIds[i]` belongs to `customers[i]`; `subscriptionId` is the first customer's.
 */
export async function subscribedFixture() {
  const base = await merchantWithPlanFixture();
  const { billing, token, safe, customers, planId } = base;
  const billingAddress = await billing.getAddress();
  const subscriptionIds: bigint[] = [];
  for (const customer of customers) {
    await fundAndApprove(token, safe, customer, billingAddress);
    await billing.connect(customer).subscribe(planId);
    subscriptionIds.push(await billing.subscriptionCount());
  }
  return { ...base, subscriptionIds, subscriptionId: subscriptionIds[0] };
}

/** Like {subscribedFixture}, with the first subscription's next period due now. */
export async function dueFixture() {
  const base = await subscribedFixture();
  await networkHelpers.time.increaseTo(await base.billing.nextChargeAt(base.subscriptionId));
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
