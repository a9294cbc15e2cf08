// The merchant tasks run through `hre.tasks` on `network.getOrCreate()`, the connection they use themselves, so a
// test sets the chain up here and drives it through the CLI wiring, reading what the task printed.
import hre, { network } from "hardhat";

export const connection = await network.getOrCreate();
export const { ethers, networkHelpers, provider } = connection;

export type TaskResult = { success: boolean; value?: unknown; error?: Error; output: string };

/** Runs a task as the CLI would, capturing what it prints. */
export async function runTask(name: string, args: Record<string, unknown>): Promise<TaskResult> {
  const log = console.log;
  const error = console.error;
  const lines: string[] = [];
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  console.error = (...parts: unknown[]) => lines.push(parts.join(" "));
  try {
    const result = (await hre.tasks.getTask(name).run(args)) as Omit<TaskResult, "output">;
    return { ...result, output: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

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
