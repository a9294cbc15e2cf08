import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";

import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { errorResult } from "hardhat/utils/result";

import type { RecurringBilling } from "../../../types/ethers-contracts/index.js";
import { toJson } from "../../safe/actions/common.js";
import { parseAddress } from "../../safe/lib/addresses.js";
import { SafeTaskError } from "../../safe/lib/errors.js";
import { MerchantTaskError } from "./errors.js";

/** What every merchant task needs: the billing contract on the `--network` connection. */
export interface BillingContext {
  hre: HardhatRuntimeEnvironment;
  ethers: Awaited<ReturnType<HardhatRuntimeEnvironment["network"]["getOrCreate"]>>["ethers"];
  chainId: bigint;
  billing: RecurringBilling;
  billingAddress: string;
}

/** The options every merchant task takes. */
export interface CommonArgs {
  billing: string;
  json: boolean;
}

/**
 * Connects to the network and finds the billing contract: `--billing` when given, else the one Ignition deployed on
 * this chain (`RecurringBilling#RecurringBilling`).
 */
export async function openBilling(hre: HardhatRuntimeEnvironment, billingOption: string): Promise<BillingContext> {
  const { ethers } = await hre.network.getOrCreate();
  const chainId = (await ethers.provider.getNetwork()).chainId;
  const billingAddress =
    billingOption !== "" ? parseAddress(billingOption, "--billing") : await deployedBilling(hre, chainId);
  if ((await ethers.provider.getCode(billingAddress)) === "0x") {
    throw new MerchantTaskError(`no contract at ${billingAddress} on chain ${chainId} (check --billing and --network)`);
  }
  const billing = (await ethers.getContractAt("RecurringBilling", billingAddress)) as unknown as RecurringBilling;
  return { hre, ethers, chainId, billing, billingAddress };
}

async function deployedBilling(hre: HardhatRuntimeEnvironment, chainId: bigint): Promise<string> {
  const file = path.join(hre.config.paths.ignition, "deployments", `chain-${chainId}`, "deployed_addresses.json");
  const deployed = existsSync(file) ? (JSON.parse(await readFile(file, "utf8")) as Record<string, string>) : {};
  const address = deployed["RecurringBilling#RecurringBilling"];
  if (address === undefined) {
    throw new MerchantTaskError(
      `no --billing given and no Ignition deployment of RecurringBilling on chain ${chainId}`,
    );
  }
  return parseAddress(address, file);
}

/**
 * The account a task sends from: `--account` as an index into the network's accounts (node accounts, a Ledger's
 * accounts, a remote signer's) or as one of their addresses.
 */
export async function resolveAccount(context: BillingContext, account: string): Promise<HardhatEthersSigner> {
  const signers = await context.ethers.getSigners();
  if (signers.length === 0)
    throw new MerchantTaskError("the network has no accounts to send from (configure accounts)");
  const trimmed = account.trim();
  if (/^\d+$/.test(trimmed)) {
    const index = Number(trimmed);
    if (index >= signers.length) {
      throw new MerchantTaskError(
        `--account ${index}: the network has ${signers.length} accounts (0 to ${signers.length - 1})`,
      );
    }
    return signers[index];
  }
  const address = parseAddress(trimmed, "--account");
  const signer = signers.find((item) => item.address === address);
  if (signer === undefined) throw new MerchantTaskError(`--account ${address} is not one of the network's accounts`);
  return signer;
}

export { toJson };

/**
 * Runs a task body. Its result is printed by `print` or, with `--json`, as JSON on stdout. Bad input (a
 * {@link MerchantTaskError} or an address error) is one line on stderr and a failed Result (exit code 1, no stack
 * trace); any other error is a bug and propagates.
 */
export async function runMerchantTask<T>(json: boolean, body: () => Promise<T>, print: (value: T) => void) {
  try {
    const value = await body();
    if (json) console.log(toJson(value));
    else print(value);
    return { success: true as const, value };
  } catch (error) {
    if (error instanceof MerchantTaskError || error instanceof SafeTaskError) {
      console.error(`Error: ${error.message}`);
      return errorResult(error);
    }
    throw error;
  }
}
