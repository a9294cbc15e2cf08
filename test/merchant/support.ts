// The merchant tasks run through `hre.tasks` on `network.getOrCreate()`, the connection they use themselves, so a
// test sets the chain up here and drives it through the CLI wiring, reading what the task printed.
import { network } from "hardhat";

import { runTask } from "../support/run-task.js";

export { runTask };

export const connection = await network.getOrCreate();
export const { ethers, networkHelpers, provider } = connection;

/** Runs a task with `--json` and parses what it printed; fails the test when the task failed. */
export async function runJson<T>(name: string, args: Record<string, unknown>): Promise<T> {
  const result = await runTask(name, { ...args, json: true });
  if (!result.success) throw new Error(`${name} failed: ${result.output}`);
  return JSON.parse(result.output) as T;
}

/** A billing contract (owned by account 0, account 6 its operator), a token (18 decimals) and funded customers. */
export async function merchantFixture() {
  const [owner, merchantAdmin, beneficiary, customerA, customerB, outsider, operator] = await ethers.getSigners();
  const token = await ethers.deployContract("BillingToken", ["Test Dollar", "TUSD", owner.address]);
  const billing = await ethers.deployContract("RecurringBilling", [
    owner.address,
    [operator.address],
    ethers.ZeroAddress,
    7n * 86_400n,
  ]);
  const billingAddress = await billing.getAddress();
  const tokenAddress = await token.getAddress();
  for (const customer of [customerA, customerB]) {
    await token.mint(customer.address, ethers.parseUnits("1000", 18));
    await token.connect(customer).approve(billingAddress, ethers.MaxUint256);
  }
  return {
    owner,
    merchantAdmin,
    beneficiary,
    customerA,
    customerB,
    outsider,
    operator,
    token,
    tokenAddress,
    billing,
    billingAddress,
  };
}
