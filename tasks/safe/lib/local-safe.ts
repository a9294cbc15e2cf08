import type { ContractNetworksConfig } from "@safe-global/protocol-kit";
import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";
import { loadSafeArtifact, type SafeContractName } from "./safe-artifacts.js";

/** Addresses of the Safe 1.5.0 infrastructure contracts deployed by {@link deployLocalSafe}. */
export type SafeContracts = Record<SafeContractName, string>;

/** What {@link deployLocalSafe} deployed. */
export interface LocalSafeDeployment {
  /** Chain the contracts live on. */
  chainId: bigint;
  /** The new Safe (a SafeProxy in front of the SafeL2 singleton). */
  safeAddress: string;
  owners: string[];
  threshold: number;
  contracts: SafeContracts;
  /** The map protocol-kit's `Safe.init({ contractNetworks })` needs on a chain without official Safe deployments. */
  contractNetworks: ContractNetworksConfig;
}

/** Inputs of {@link deployLocalSafe}. */
export interface DeployLocalSafeOptions {
  /** Pays for and sends every deployment; it gets no rights over the Safe. */
  deployer: ethers.Signer;
  /** Owners of the new Safe. */
  owners: string[];
  /** Signatures needed to execute a Safe transaction. */
  threshold: number;
  /** Salt of the proxy; a different salt gives a different Safe for the same owners. Default 0. */
  saltNonce?: bigint;
}

const CONTRACT_NAMES: SafeContractName[] = [
  "SafeL2",
  "SafeProxyFactory",
  "MultiSend",
  "MultiSendCallOnly",
  "CompatibilityFallbackHandler",
  "SignMessageLib",
  "CreateCall",
  "SimulateTxAccessor",
];

/**
 * Deploys the Safe 1.5.0 contracts (singleton, proxy factory, MultiSend, MultiSendCallOnly, fallback handler,
 * SignMessageLib, CreateCall, SimulateTxAccessor) from `@safe-global/safe-smart-account`'s build artifacts. For
 * development chains only: on public networks use the official deployments that protocol-kit already knows.
 *
 * @param deployer Pays for and sends every deployment.
 */
export async function deploySafeContracts(deployer: ethers.Signer): Promise<SafeContracts> {
  const contracts = {} as SafeContracts;
  // One at a time: concurrent sends from one account would race for the nonce.
  for (const name of CONTRACT_NAMES) {
    const { abi, bytecode } = loadSafeArtifact(name);
    const contract = await new ethers.ContractFactory(abi, bytecode, deployer).deploy();
    await contract.waitForDeployment();
    contracts[name] = await contract.getAddress();
  }
  return contracts;
}

/**
 * The names of the Safe contracts of `contracts` that have no code on chain (all of them after a node restart).
 *
 * @param provider The chain.
 * @param contracts Their supposed addresses.
 */
export async function missingSafeContracts(provider: ethers.Provider, contracts: SafeContracts): Promise<string[]> {
  const missing: string[] = [];
  for (const name of CONTRACT_NAMES) {
    if ((await provider.getCode(contracts[name])) === "0x") missing.push(name);
  }
  return missing;
}

/** Inputs of {@link createLocalSafe}. */
export interface CreateLocalSafeOptions extends DeployLocalSafeOptions {
  contracts: SafeContracts;
}

/**
 * Creates a Safe with `owners` and `threshold` through the proxy factory of `contracts`, or finds the one these
 * exact inputs created before (a CREATE2 address), so running it twice never creates a second Safe.
 *
 * @returns The Safe, and whether it existed already.
 * @throws SafeTaskError when the owners or threshold cannot form a valid Safe.
 */
export async function createLocalSafe(
  options: CreateLocalSafeOptions,
): Promise<LocalSafeDeployment & { reused: boolean }> {
  const { deployer, owners, threshold, saltNonce = 0n, contracts } = options;
  validateOwnersAndThreshold(owners, threshold);
  const provider = deployer.provider;
  if (provider === null) throw new SafeTaskError("the deployer signer must be connected to a provider");
  const { chainId } = await provider.getNetwork();
  const singleton = new ethers.Interface(loadSafeArtifact("SafeL2").abi);
  const setup = singleton.encodeFunctionData("setup", [
    owners,
    threshold,
    ethers.ZeroAddress,
    "0x",
    contracts.CompatibilityFallbackHandler,
    ethers.ZeroAddress,
    0,
    ethers.ZeroAddress,
  ]);
  const factory = new ethers.Contract(contracts.SafeProxyFactory, loadSafeArtifact("SafeProxyFactory").abi, deployer);
  // SafeProxyFactory.createProxyWithNonce's CREATE2: salt = keccak(keccak(initializer) ++ saltNonce), init code =
  // proxy creation code ++ singleton.
  const salt = ethers.solidityPackedKeccak256(["bytes32", "uint256"], [ethers.keccak256(setup), saltNonce]);
  const initCode = ethers.concat([
    (await factory.proxyCreationCode()) as string,
    ethers.zeroPadValue(contracts.SafeL2, 32),
  ]);
  const predicted = ethers.getCreate2Address(contracts.SafeProxyFactory, salt, ethers.keccak256(initCode));
  const result = {
    chainId,
    safeAddress: predicted,
    owners: owners.map((owner) => ethers.getAddress(owner)),
    threshold,
    contracts,
    contractNetworks: toContractNetworks(chainId, contracts),
  };
  if ((await provider.getCode(predicted)) !== "0x") return { ...result, reused: true };

  const receipt = await (await factory.createProxyWithNonce(contracts.SafeL2, setup, saltNonce)).wait();
  const creation = receipt?.logs
    .map((log: ethers.Log) => factory.interface.parseLog(log))
    .find((parsed: ethers.LogDescription | null) => parsed?.name === "ProxyCreation");
  if (creation === undefined || creation === null) {
    throw new Error("SafeProxyFactory did not emit ProxyCreation: the Safe was not created");
  }
  if (ethers.getAddress(creation.args.proxy as string) !== predicted) {
    throw new Error(`the Safe was created at ${creation.args.proxy}, not at the predicted ${predicted}`);
  }
  return { ...result, reused: false };
}

/**
 * Deploys the Safe 1.5.0 contracts, then creates a Safe with `owners` and `threshold` through the proxy factory.
 * Deterministic: on a fresh chain, the same deployer, owners, threshold and salt always give the same addresses.
 *
 * @throws SafeTaskError when the owners or threshold cannot form a valid Safe.
 */
export async function deployLocalSafe(options: DeployLocalSafeOptions): Promise<LocalSafeDeployment> {
  validateOwnersAndThreshold(options.owners, options.threshold);
  const contracts = await deploySafeContracts(options.deployer);
  const { reused: _reused, ...deployment } = await createLocalSafe({ ...options, contracts });
  return deployment;
}

/**
 * The contracts of a `contractNetworks` entry (the inverse of {@link toContractNetworks}), or undefined when an
 * address is missing.
 *
 * @param entry One chain's entry.
 */
export function fromContractNetworks(entry: Record<string, string> | undefined): SafeContracts | undefined {
  if (entry === undefined) return undefined;
  const contracts = {
    SafeL2: entry.safeSingletonAddress,
    SafeProxyFactory: entry.safeProxyFactoryAddress,
    MultiSend: entry.multiSendAddress,
    MultiSendCallOnly: entry.multiSendCallOnlyAddress,
    CompatibilityFallbackHandler: entry.fallbackHandlerAddress,
    SignMessageLib: entry.signMessageLibAddress,
    CreateCall: entry.createCallAddress,
    SimulateTxAccessor: entry.simulateTxAccessorAddress,
  };
  return Object.values(contracts).every((address) => typeof address === "string" && ethers.isAddress(address))
    ? contracts
    : undefined;
}

/**
 * Builds protocol-kit's `contractNetworks` entry for Safe contracts deployed at `contracts` on `chainId`.
 *
 * @param chainId The chain the contracts live on.
 * @param contracts Their addresses.
 */
export function toContractNetworks(chainId: bigint, contracts: SafeContracts): ContractNetworksConfig {
  return {
    [chainId.toString()]: {
      safeSingletonAddress: contracts.SafeL2,
      safeProxyFactoryAddress: contracts.SafeProxyFactory,
      multiSendAddress: contracts.MultiSend,
      multiSendCallOnlyAddress: contracts.MultiSendCallOnly,
      fallbackHandlerAddress: contracts.CompatibilityFallbackHandler,
      signMessageLibAddress: contracts.SignMessageLib,
      createCallAddress: contracts.CreateCall,
      simulateTxAccessorAddress: contracts.SimulateTxAccessor,
    },
  };
}

/** Checks that `owners` and `threshold` can form a Safe, before anything is deployed. */
export function validateOwnersAndThreshold(owners: string[], threshold: number): void {
  if (owners.length === 0) throw new SafeTaskError("a Safe needs at least one owner");
  const unique = new Set(owners.map((owner) => owner.toLowerCase()));
  if (unique.size !== owners.length) throw new SafeTaskError("each Safe owner must be listed once");
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > owners.length) {
    throw new SafeTaskError(
      `threshold must be between 1 and the number of owners (${owners.length}), got ${threshold}`,
    );
  }
}
