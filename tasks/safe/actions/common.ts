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

/** What every task accepts: `--json` prints one JSON document on stdout (the human-readable text goes to stderr). */
export interface OutputOptions {
  json?: boolean;
}

/** JSON for scripting: bigints as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item), 2);
}

/**
 * Runs a task body; a {@link SafeTaskError} (bad input) is printed as one line and returned as a failed Result, so the
 * CLI exits with code 1 and shows no stack trace. Any other error is a bug and propagates as is.
 *
 * With `--json`, what the body prints for people goes to stderr and stdout gets exactly one JSON document: the body's
 * result, or `{ "error": message }`.
 */
export async function runSafeTask<T>(body: () => Promise<T>, options: OutputOptions = {}) {
  const log = console.log;
  if (options.json === true) console.log = (...parts: unknown[]) => console.error(...parts);
  try {
    const value = await body();
    if (options.json === true) log(toJson(value));
    return { success: true as const, value };
  } catch (error) {
    if (error instanceof SafeTaskError) {
      if (options.json === true) log(toJson({ error: error.message }));
      else console.error(`Error: ${error.message}`);
      return errorResult(error);
    }
    throw error;
  } finally {
    console.log = log;
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
  /** An index into the network's accounts or one of their addresses; "" when not given. */
  account: string;
}

/**
 * The account a task signs with: `--account`, an account of the network by index or address (node accounts, Ledger
 * accounts through hardhat-ledger, a remote signer's accounts), whose key never reaches this process; or, for tests and
 * CI only, `--key-var`, a private key from a Hardhat configuration variable. Exactly one is required; a key is never
 * printed.
 */
export async function resolveSigner(
  hre: HardhatRuntimeEnvironment,
  provider: EthereumProvider,
  { keyVar, account }: SignerOptions,
): Promise<AccountSigner> {
  if ((keyVar === "") === (account === "")) {
    throw new SafeTaskError(
      "give exactly one of --account <index|address> (an account of the network: node, Ledger or remote signer) " +
        "or --key-var NAME (a raw private key: tests and CI only)",
    );
  }
  if (keyVar !== "") {
    console.error(
      `Warning: signing with the raw private key in ${keyVar}. This is for tests and CI only: owners sign with ` +
        "--account on a Ledger (--network sepoliaLedger) or a remote signer, so no key reaches this process.",
    );
    // Like Hardhat's own resolution: the environment first, then the keystore (which may ask for its password).
    const value = process.env[keyVar] ?? (await fetchConfigVariable(hre, keyVar));
    return { privateKey: parsePrivateKey(value, `configuration variable ${keyVar}`) };
  }
  return resolveAccount(provider, account);
}

/** A configuration variable from the keystore, with a one-line error when it is missing or cannot be read. */
export async function fetchConfigVariable(hre: HardhatRuntimeEnvironment, keyVar: string): Promise<string> {
  try {
    return await hre.hooks.runHandlerChain(
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
    );
  } catch (error) {
    if (error instanceof SafeTaskError) throw error;
    throw new SafeTaskError(
      `configuration variable ${keyVar} is not set: run "npx hardhat keystore set ${keyVar}" or export ${keyVar} ` +
        `(${(error as Error).message})`,
    );
  }
}

/** `--account`: an index into the network's accounts, or one of their addresses. */
async function resolveAccount(provider: EthereumProvider, account: string): Promise<AccountSigner> {
  const accounts = ((await provider.request({ method: "eth_accounts" })) as string[]).map((a) => ethers.getAddress(a));
  const given = account.trim();
  if (/^\d+$/.test(given)) {
    const index = Number(given);
    if (index >= accounts.length) {
      throw new SafeTaskError(
        accounts.length === 0
          ? `--account ${given}: the network has no accounts (configure a Ledger or a remote signer, see README)`
          : `--account ${given}: the network has ${accounts.length} accounts (0 to ${accounts.length - 1})`,
      );
    }
    return { nodeAccount: accounts[index] };
  }
  const address = parseAddress(given, "--account");
  if (!accounts.includes(address)) {
    throw new SafeTaskError(
      `--account ${address} is not an account of this network (it has ${accounts.length === 0 ? "none" : accounts.join(", ")}): ` +
        "for a Ledger add it to LEDGER_ACCOUNTS and use --network sepoliaLedger",
    );
  }
  return { nodeAccount: address };
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
