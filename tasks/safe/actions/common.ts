import { existsSync } from "node:fs";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";

import type { ContractNetworksConfig } from "@safe-global/protocol-kit";
import { ethers } from "ethers";
import { configVariable } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { EthereumProvider } from "hardhat/types/providers";
import { errorResult } from "hardhat/utils/result";
import { z } from "zod";

import { parseAddress } from "../lib/addresses.js";
import { type AccountSigner, parsePrivateKey, toEthersProvider } from "../lib/chain.js";
import { SafeTaskError } from "../lib/errors.js";
import { type Proposal, writeProposal } from "../lib/proposal-file.js";
import { printProposal } from "./print.js";

/** The network a task runs on: the `--network` connection, shared with anything else in this process that uses it. */
export async function connect(
  hre: HardhatRuntimeEnvironment,
): Promise<{ provider: EthereumProvider; chainId: bigint }> {
  const connection = await hre.network.getOrCreate();
  const chainId = BigInt((await connection.provider.request({ method: "eth_chainId" })) as string);
  return { provider: connection.provider, chainId };
}

/**
 * Runs a task body; a {@link SafeTaskError} (bad input) is printed as one line and returned as a failed Result, so the
 * CLI exits with code 1 and shows no stack trace. Any other error is a bug and propagates as is.
 */
export async function runSafeTask<T>(body: () => Promise<T>) {
  try {
    return { success: true as const, value: await body() };
  } catch (error) {
    if (error instanceof SafeTaskError) {
      console.error(`Error: ${error.message}`);
      return errorResult(error);
    }
    throw error;
  }
}

/** Default location of the `contractNetworks` file that `safe:deploy-local` writes for `chainId`. */
export function defaultContractsFile(hre: HardhatRuntimeEnvironment, chainId: bigint): string {
  return path.join(hre.config.paths.root, "proposals", `safe-contracts-${chainId}.json`);
}

const contractNetworksSchema = z.record(z.string().regex(/^\d+$/), z.record(z.string(), z.string()));

/**
 * protocol-kit's `contractNetworks`: from `file` when given, else from the default file for this chain when it exists
 * (a local chain), else none (public chains, whose Safe deployments protocol-kit knows).
 */
export async function loadContractNetworks(
  hre: HardhatRuntimeEnvironment,
  chainId: bigint,
  file: string,
): Promise<ContractNetworksConfig | undefined> {
  const source = file !== "" ? file : defaultContractsFile(hre, chainId);
  if (file === "" && !existsSync(source)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(source, "utf8"));
  } catch {
    throw new SafeTaskError(`cannot read the Safe contracts file ${source} (written by safe:deploy-local)`);
  }
  const parsed = contractNetworksSchema.safeParse(json);
  if (!parsed.success) throw new SafeTaskError(`${source} is not a contractNetworks map`);
  return parsed.data as ContractNetworksConfig;
}

/** Writes the `contractNetworks` map for later tasks. */
export async function saveContractNetworks(file: string, contractNetworks: ContractNetworksConfig): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, `${JSON.stringify(contractNetworks, null, 2)}\n`);
}

/** Ignition's id of the billing contract, whose constructor creates the registry (contracts v2). */
export const BILLING_DEPLOYMENT_ID = "RecurringBilling#RecurringBilling";

/**
 * The registry address: `--registry` when given, else the registry of the RecurringBilling contract that Ignition
 * deployed on this chain (`billing.registry()`, read from the chain rather than from the journal).
 */
export async function resolveRegistry(hre: HardhatRuntimeEnvironment, chainId: bigint, value: string): Promise<string> {
  if (value !== "") return parseAddress(value, "--registry");
  const file = path.join(hre.config.paths.ignition, "deployments", `chain-${chainId}`, "deployed_addresses.json");
  const deployed = existsSync(file) ? (JSON.parse(await readFile(file, "utf8")) as Record<string, string>) : {};
  const billing = deployed[BILLING_DEPLOYMENT_ID];
  if (billing === undefined) {
    throw new SafeTaskError(
      `no --registry given and no Ignition deployment of ${BILLING_DEPLOYMENT_ID} on chain ${chainId} (${file})`,
    );
  }
  const { provider } = await connect(hre);
  const billingAddress = parseAddress(billing, file);
  try {
    const contract = new ethers.Contract(
      billingAddress,
      ["function registry() view returns (address)"],
      toEthersProvider(provider),
    );
    return parseAddress((await contract.registry()) as string, `${billingAddress}.registry()`);
  } catch (error) {
    if (error instanceof SafeTaskError) throw error;
    throw new SafeTaskError(
      `the RecurringBilling that Ignition deployed at ${billingAddress} does not answer registry(): is this the right ` +
        "network, or was the chain restarted? Pass --registry",
    );
  }
}

/** Options every signing task takes. */
export interface SignerOptions {
  keyVar: string;
  account: number;
}

/**
 * The account a task signs with: a private key from a Hardhat configuration variable (environment variable or
 * `npx hardhat keystore set NAME`), or an account of the node by index (local development). Exactly one is required.
 * The key is never printed.
 */
export async function resolveSigner(
  hre: HardhatRuntimeEnvironment,
  provider: EthereumProvider,
  { keyVar, account }: SignerOptions,
): Promise<AccountSigner> {
  if ((keyVar === "") === account < 0) {
    throw new SafeTaskError("give exactly one of --key-var NAME (a private key in the keystore or env) or --account N");
  }
  if (keyVar !== "") {
    // Like Hardhat's own resolution: the environment first, then the keystore (which may ask for its password).
    const value =
      process.env[keyVar] ??
      (await hre.hooks.runHandlerChain(
        "configurationVariables",
        "fetchValue",
        [configVariable(keyVar)],
        async (_context, variable) => {
          const fromEnv = process.env[variable.name];
          if (fromEnv === undefined) {
            throw new SafeTaskError(
              `configuration variable ${keyVar} is not set: run "npx hardhat keystore set ${keyVar}" or export ${keyVar}`,
            );
          }
          return fromEnv;
        },
      ));
    return { privateKey: parsePrivateKey(value, `configuration variable ${keyVar}`) };
  }
  const accounts = (await provider.request({ method: "eth_accounts" })) as string[];
  if (account >= accounts.length) {
    throw new SafeTaskError(
      `--account ${account}: the node has ${accounts.length} accounts (0 to ${accounts.length - 1})`,
    );
  }
  return { nodeAccount: parseAddress(accounts[account], "--account") };
}

/** The `--file` option, which proposal tasks require. */
export function requireFile(file: string | undefined): string {
  if (file === undefined || file === "") throw new SafeTaskError("--file is required: the proposal JSON file");
  return file;
}

/**
 * Writes a new proposal (never over an existing file, so a proposal being signed is never replaced), prints it and
 * says what to do next.
 *
 * @param file `--file`, or undefined for `proposals/<kind>-chain<id>-<safe>-nonce<n>.json`.
 * @param kind What the proposal does, for the default file name (`rotation`, `guardian`).
 */
export async function saveNewProposal(file: string | undefined, kind: string, proposal: Proposal): Promise<string> {
  const destination =
    file ?? path.join("proposals", `${kind}-chain${proposal.chainId}-${proposal.safe}-nonce${proposal.safeNonce}.json`);
  await writeProposal(destination, proposal, { exclusive: true });
  printProposal(proposal);
  console.log(
    `Written to ${destination}. Next: each owner runs operators:sign --file ${destination} on their own machine.`,
  );
  return destination;
}
