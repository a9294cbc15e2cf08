import { ethers } from "ethers";

import { type AccountSigner, type ChainProvider, signerAddress, toEthersProvider, toEthersSigner } from "./chain.js";
import { SafeTaskError } from "./errors.js";
import { checkRotationApplies, openRegistry } from "./registry.js";

/** Who administers a registry and which operators it has. */
export interface RegistryState {
  registry: string;
  owner: string;
  /** Zero address when the fast revoke path is disabled. */
  guardian: string;
  operators: string[];
}

/**
 * Reads a registry's operators, owner and guardian.
 *
 * @param provider The node.
 * @param registryAddress The OperatorRegistry.
 * @throws SafeTaskError when `registryAddress` is not an OperatorRegistry.
 */
export async function listOperators(provider: ChainProvider, registryAddress: string): Promise<RegistryState> {
  const registry = await openRegistry(toEthersProvider(provider), registryAddress);
  const [operators, owner, guardian] = await Promise.all([registry.operators(), registry.owner(), registry.guardian()]);
  return {
    registry: ethers.getAddress(registryAddress),
    owner: ethers.getAddress(owner),
    guardian: ethers.getAddress(guardian),
    operators: (operators as string[]).map((operator) => ethers.getAddress(operator)),
  };
}

/** Inputs of {@link revokeOperators}. */
export interface RevokeOperatorsOptions {
  provider: ChainProvider;
  registryAddress: string;
  accounts: string[];
  /** The registry's guardian (the owner Safe goes through a proposal instead). */
  guardian: AccountSigner;
}

/**
 * Incident fast path: the guardian removes `accounts` at once with `revokeOperators`, without waiting for the Safe's
 * threshold. It can only remove; adding the replacement key still takes a Safe proposal.
 *
 * @returns The hash of the transaction.
 * @throws SafeTaskError when the signer is not the guardian or an account is not an operator (checked before sending).
 */
export async function revokeOperators(options: RevokeOperatorsOptions): Promise<string> {
  const provider = toEthersProvider(options.provider);
  const state = await listOperators(options.provider, options.registryAddress);
  const caller = signerAddress(options.guardian);
  if (caller !== state.guardian) {
    const guardian = state.guardian === ethers.ZeroAddress ? "none is set" : `it is ${state.guardian}`;
    throw new SafeTaskError(
      `${caller} is not the registry's guardian (${guardian}): use operators:propose --remove through the Safe`,
    );
  }
  if (options.accounts.length === 0) throw new SafeTaskError("nothing to do: give at least one operator to --remove");
  checkRotationApplies(state.operators, { remove: options.accounts, add: [] });
  const registry = await openRegistry(await toEthersSigner(provider, options.guardian), options.registryAddress);
  const receipt = await (await registry.revokeOperators(options.accounts)).wait();
  return receipt.hash;
}
