import type { Eip1193Provider } from "@safe-global/protocol-kit";
import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";

/** A node to talk to: an EIP-1193 provider (e.g. a Hardhat network connection's `provider`) or a JSON-RPC URL. */
export type ChainProvider = Eip1193Provider | string;

/**
 * Who signs or sends: a private key held by this process (never printed), or the address of an account the node
 * itself manages (`npx hardhat node`'s accounts, for local development).
 */
export type AccountSigner = { privateKey: string } | { nodeAccount: string };

/**
 * Wraps `provider` in an ethers provider that never serves a cached answer, so a check made right after a transaction
 * sees that transaction.
 *
 * @param provider The node.
 */
export function toEthersProvider(provider: ChainProvider): ethers.JsonRpcApiProvider {
  return typeof provider === "string"
    ? new ethers.JsonRpcProvider(provider, undefined, { cacheTimeout: -1 })
    : new ethers.BrowserProvider(provider, undefined, { cacheTimeout: -1 });
}

/**
 * The form protocol-kit takes for a signer: the private key itself, or the node account's address.
 *
 * @param signer The account.
 */
export function toProtocolKitSigner(signer: AccountSigner): string {
  return "privateKey" in signer ? signer.privateKey : signer.nodeAccount;
}

/**
 * An ethers signer for `signer` on `provider`.
 *
 * @param provider The node.
 * @param signer The account.
 */
export async function toEthersSigner(
  provider: ethers.JsonRpcApiProvider,
  signer: AccountSigner,
): Promise<ethers.Signer> {
  return "privateKey" in signer
    ? new ethers.Wallet(signer.privateKey, provider)
    : provider.getSigner(signer.nodeAccount);
}

/**
 * The address of `signer`, without contacting the node.
 *
 * @param signer The account.
 */
export function signerAddress(signer: AccountSigner): string {
  return "privateKey" in signer ? new ethers.Wallet(signer.privateKey).address : ethers.getAddress(signer.nodeAccount);
}

/**
 * Checks that `value` is a private key (32 bytes, 0x-prefixed hex) without ever echoing it.
 *
 * @param value The candidate key.
 * @param source Where it came from, for the error message (e.g. `config variable SAFE_OWNER_KEY`).
 * @throws SafeTaskError when it is not a usable key.
 */
export function parsePrivateKey(value: string, source: string): string {
  const key = value.trim().startsWith("0x") ? value.trim() : `0x${value.trim()}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    throw new SafeTaskError(`${source} is not a private key (expected 64 hex digits, optionally 0x-prefixed)`);
  }
  try {
    new ethers.SigningKey(key);
  } catch {
    throw new SafeTaskError(`${source} is not a valid secp256k1 private key`);
  }
  return key;
}
