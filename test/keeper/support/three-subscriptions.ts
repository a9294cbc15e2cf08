// A billing deployment with three subscribers of one monthly plan, on an in-process chain: the small world the keeper
// unit tests run the real keeper parts against.
import type { NetworkConnection } from "hardhat/types/network";

export const DAY = 86_400n;
export const PERIOD = 30n * DAY;
export const AMOUNT = 10n ** 19n;

/**
 * Deploys BillingToken, an OperatorRegistry with `operator` and RecurringBilling (7-day grace), funds `operator`,
 * and subscribes the first three spare accounts (unlimited allowance), whose first period is paid at subscribe.
 */
export async function deployThreeSubscriptions(
  { ethers, networkHelpers }: Pick<NetworkConnection, "ethers" | "networkHelpers">,
  operator: string,
) {
  const [safe, merchantAdmin, beneficiary, ...spare] = await ethers.getSigners();
  await networkHelpers.setBalance(operator, 10n ** 20n);
  const startBlock = (await ethers.provider.getBlockNumber()) + 1;
  const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", safe.address]);
  const registry = await ethers.deployContract("OperatorRegistry", [safe.address, [operator]]);
  const billing = await ethers.deployContract("RecurringBilling", [
    safe.address,
    await registry.getAddress(),
    7n * DAY,
  ]);
  const billingAddress = await billing.getAddress();
  await billing.connect(merchantAdmin).registerMerchant(beneficiary.address);
  await billing.connect(merchantAdmin).createPlan(1n, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n);
  const customers = spare.slice(0, 3);
  for (const customer of customers) {
    await token.connect(safe).mint(customer.address, AMOUNT * 100n);
    await token.connect(customer).approve(billingAddress, ethers.MaxUint256);
    await billing.connect(customer).subscribe(1n);
  }
  return { token, registry, billing, billingAddress, customers, startBlock };
}
