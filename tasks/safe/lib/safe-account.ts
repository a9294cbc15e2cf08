import protocolKit, { type ContractNetworksConfig } from "@safe-global/protocol-kit";
import { ethers } from "ethers";

import { type AccountSigner, type ChainProvider, toProtocolKitSigner } from "./chain.js";
import { SafeTaskError } from "./errors.js";

// protocol-kit's declarations are typed as CommonJS (default import = the module object, class under `.default`) while
// Node loads its ESM build (default import = the class): accept both shapes.
const Safe = ((protocolKit as unknown as { default?: unknown }).default ?? protocolKit) as typeof protocolKit.default;
/** A protocol-kit Safe instance. */
export type ProtocolKitSafe = InstanceType<typeof Safe>;

const SAFE_VIEW_ABI = [
  "function getOwners() view returns (address[])",
  "function getThreshold() view returns (uint256)",
  "function nonce() view returns (uint256)",
  "function VERSION() view returns (string)",
];

/** What a Safe looks like on chain right now. */
export interface SafeState {
  address: string;
  owners: string[];
  threshold: number;
  nonce: number;
  version: string;
}

/**
 * Reads a Safe's owners, threshold, nonce and version, proving on the way that `address` is a Safe.
 *
 * @param provider An ethers provider on the Safe's chain.
 * @param address The supposed Safe.
 * @throws SafeTaskError when there is no contract at `address` or it does not answer like a Safe.
 */
export async function readSafeState(provider: ethers.Provider, address: string): Promise<SafeState> {
  if ((await provider.getCode(address)) === "0x") {
    throw new SafeTaskError(`${address} is not a Safe: no contract is deployed there`);
  }
  const safe = new ethers.Contract(address, SAFE_VIEW_ABI, provider);
  try {
    const [owners, threshold, nonce, version] = await Promise.all([
      safe.getOwners() as Promise<string[]>,
      safe.getThreshold() as Promise<bigint>,
      safe.nonce() as Promise<bigint>,
      safe.VERSION() as Promise<string>,
    ]);
    return {
      address,
      owners: owners.map((owner) => ethers.getAddress(owner)),
      threshold: Number(threshold),
      nonce: Number(nonce),
      version,
    };
  } catch {
    throw new SafeTaskError(`${address} is not a Safe: it does not answer getOwners/getThreshold/nonce/VERSION`);
  }
}

/** Inputs of {@link openSafe}. */
export interface OpenSafeOptions {
  provider: ChainProvider;
  safeAddress: string;
  /** Who protocol-kit signs or sends with; omit for read-only use. */
  signer?: AccountSigner;
  /** Needed on chains without official Safe deployments (a local chain); see `deployLocalSafe`. */
  contractNetworks?: ContractNetworksConfig;
}

/**
 * A protocol-kit Safe instance bound to one signer.
 *
 * @throws SafeTaskError when protocol-kit cannot load the Safe (typically: missing `contractNetworks` on a local chain).
 */
export async function openSafe(options: OpenSafeOptions): Promise<ProtocolKitSafe> {
  try {
    return await Safe.init({
      provider: options.provider,
      signer: options.signer === undefined ? undefined : toProtocolKitSigner(options.signer),
      safeAddress: options.safeAddress,
      contractNetworks: options.contractNetworks,
    });
  } catch (error) {
    throw new SafeTaskError(
      `protocol-kit cannot load Safe ${options.safeAddress}: ${(error as Error).message}. ` +
        "On a local chain pass the contract networks file written by safe:deploy-local (--contracts).",
    );
  }
}
