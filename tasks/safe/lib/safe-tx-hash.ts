import { calculateSafeTransactionHash, preimageSafeTransactionHash } from "@safe-global/protocol-kit";
import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";

/** The Safe transaction, field for field as the Safe hashes it (EIP-712 `SafeTx`). */
export interface SafeTransactionFields {
  to: string;
  value: string;
  data: string;
  operation: number;
  safeTxGas: string;
  baseGas: string;
  gasPrice: string;
  gasToken: string;
  refundReceiver: string;
  nonce: number;
}

/** The EIP-712 `SafeTx` type of Safe >= 1.3 (the version whose domain includes the chain id). */
export const SAFE_TX_TYPES = {
  SafeTx: [
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "data", type: "bytes" },
    { name: "operation", type: "uint8" },
    { name: "safeTxGas", type: "uint256" },
    { name: "baseGas", type: "uint256" },
    { name: "gasPrice", type: "uint256" },
    { name: "gasToken", type: "address" },
    { name: "refundReceiver", type: "address" },
    { name: "nonce", type: "uint256" },
  ],
};

/**
 * The three hashes a hardware wallet shows for a Safe transaction: the EIP-712 domain hash (binds the chain and the
 * Safe), the message hash (binds every field of the transaction) and the safeTxHash the owners sign.
 */
export interface SafeTxHashes {
  domainHash: string;
  messageHash: string;
  safeTxHash: string;
}

/** A Safe transaction as `eth_signTypedData_v4` takes it: JSON only (numbers as decimal strings). */
export interface SafeTxTypedData {
  types: { EIP712Domain: { name: string; type: string }[] } & typeof SAFE_TX_TYPES;
  primaryType: "SafeTx";
  domain: { chainId: string; verifyingContract: string };
  message: Omit<SafeTransactionFields, "nonce"> & { nonce: string };
}

/**
 * The typed data an owner signs for `tx` on Safe `safe` of chain `chainId`, ready for `eth_signTypedData_v4`.
 *
 * @param chainId The chain of the Safe.
 * @param safe The Safe.
 * @param tx The transaction.
 */
export function safeTxTypedData(chainId: bigint, safe: string, tx: SafeTransactionFields): SafeTxTypedData {
  return {
    types: {
      EIP712Domain: [
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      ...SAFE_TX_TYPES,
    },
    primaryType: "SafeTx",
    domain: { chainId: chainId.toString(), verifyingContract: ethers.getAddress(safe) },
    message: { ...tx, nonce: tx.nonce.toString() },
  };
}

/**
 * The domain hash, message hash and safeTxHash of `tx`, computed here with ethers' EIP-712 encoder (not protocol-kit's).
 *
 * @param chainId The chain of the Safe.
 * @param safe The Safe.
 * @param tx The transaction.
 */
export function computeSafeTxHashes(chainId: bigint, safe: string, tx: SafeTransactionFields): SafeTxHashes {
  const domain = { chainId, verifyingContract: safe };
  return {
    domainHash: ethers.TypedDataEncoder.hashDomain(domain),
    messageHash: ethers.TypedDataEncoder.from(SAFE_TX_TYPES).hash(tx),
    safeTxHash: ethers.TypedDataEncoder.hash(domain, SAFE_TX_TYPES, tx),
  };
}

/**
 * The Safe transaction hash (EIP-712, Safe >= 1.3 domain), computed here rather than trusted from a file.
 *
 * @param chainId The chain of the Safe.
 * @param safe The Safe.
 * @param tx The transaction.
 */
export function computeSafeTxHash(chainId: bigint, safe: string, tx: SafeTransactionFields): string {
  return computeSafeTxHashes(chainId, safe, tx).safeTxHash;
}

/**
 * The same three hashes as protocol-kit computes them: its EIP-712 pre-image is `0x1901 ‖ domainHash ‖ messageHash`.
 *
 * @param chainId The chain of the Safe.
 * @param safe The Safe.
 * @param tx The transaction.
 * @param safeVersion The Safe's version (it decides the domain).
 */
export function protocolKitSafeTxHashes(
  chainId: bigint,
  safe: string,
  tx: SafeTransactionFields,
  safeVersion: string,
): SafeTxHashes {
  const kitTx = { ...tx, operation: tx.operation as 0 | 1 };
  const preimage = preimageSafeTransactionHash(safe, kitTx, safeVersion, chainId);
  if (!/^0x1901[0-9a-fA-F]{128}$/.test(preimage)) {
    throw new Error(`unexpected EIP-712 pre-image from protocol-kit: ${preimage}`);
  }
  return {
    domainHash: `0x${preimage.slice(6, 70)}`.toLowerCase(),
    messageHash: `0x${preimage.slice(70, 134)}`.toLowerCase(),
    safeTxHash: calculateSafeTransactionHash(safe, kitTx, safeVersion, chainId).toLowerCase(),
  };
}

/**
 * Computes the three hashes here and checks them against protocol-kit's: two independent implementations must agree
 * before anyone is asked to compare them with their device.
 *
 * @param chainId The chain of the Safe.
 * @param safe The Safe.
 * @param tx The transaction.
 * @param safeVersion The Safe's version.
 * @throws SafeTaskError naming the first hash on which they disagree.
 */
export function verifiedSafeTxHashes(
  chainId: bigint,
  safe: string,
  tx: SafeTransactionFields,
  safeVersion: string,
): SafeTxHashes {
  const ours = computeSafeTxHashes(chainId, safe, tx);
  const kit = protocolKitSafeTxHashes(chainId, safe, tx, safeVersion);
  for (const name of ["domainHash", "messageHash", "safeTxHash"] as const) {
    if (ours[name] !== kit[name]) {
      throw new SafeTaskError(
        `hash disagreement: ${name} is ${ours[name]} here but ${kit[name]} by protocol-kit (Safe ${safeVersion}); ` +
          "do not sign",
      );
    }
  }
  return ours;
}
