// A billing deployment with three subscribers of one monthly plan, on an in-process chain: the small world the keeper
// unit tests run the real keeper parts against.
import type { NetworkConnection } from "hardhat/types/network";

export const DAY = 86_400n;
export const PERIOD = 30n * DAY;
export const AMOUNT = 10n ** 19n;

/** What the v2 contract takes to address a subscription (`RecurringBilling.SubscriptionRef`). */
export interface SubscriptionRef {
  id: bigint;
  customer: string;
  amount: bigint;
  token: string;
}

/**
 * Deploys BillingToken and RecurringBilling (7-day grace; its OperatorRegistry, owned by the first account, has
 * `operator`), funds `operator`, and subscribes the first three spare accounts (unlimited allowance), whose first
 * period is paid at subscribe. `refs[i]` addresses subscription `i + 1`.
 */
export async function deployThreeSubscriptions(
  { ethers, networkHelpers }: Pick<NetworkConnection, "ethers" | "networkHelpers">,
  operator: string,
) {
  const [safe, merchantAdmin, beneficiary, ...spare] = await ethers.getSigners();
  await networkHelpers.setBalance(operator, 10n ** 20n);
  const startBlock = (await ethers.provider.getBlockNumber()) + 1;
  const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", safe.address]);
  const billing = await ethers.deployContract("RecurringBilling", [
    safe.address,
    [operator],
    ethers.ZeroAddress,
    7n * DAY,
  ]);
  const registry = await ethers.getContractAt("OperatorRegistry", await billing.registry());
  const billingAddress = await billing.getAddress();
  const tokenAddress = await token.getAddress();
  await billing.connect(merchantAdmin).registerMerchant(beneficiary.address);
  await billing.connect(merchantAdmin).createPlan(1n, tokenAddress, AMOUNT, PERIOD, 0n, 0n, 1n);
  const customers = spare.slice(0, 3);
  for (const customer of customers) {
    await token.connect(safe).mint(customer.address, AMOUNT * 100n);
    await token.connect(customer).approve(billingAddress, ethers.MaxUint256);
    await billing.connect(customer).subscribe(1n);
  }
  const refs: SubscriptionRef[] = customers.map((customer, i) => ({
    id: BigInt(i + 1),
    customer: customer.address,
    amount: AMOUNT,
    token: tokenAddress,
  }));
  return { token, registry, billing, billingAddress, customers, refs, startBlock };
}
