import { ethers } from "ethers";

import { type AccountSigner, type ChainProvider, signerAddress, toEthersProvider } from "./chain.js";
import { SafeTaskError } from "./errors.js";
import type { SafeTxTypedData } from "./safe-tx-hash.js";

/**
 * Has `signer` sign a Safe transaction's EIP-712 typed data and checks the result.
 *
 * A node account is asked with `eth_signTypedData_v4` through the network's provider, so the key stays wherever that
 * account lives: the node (`npx hardhat node`), a Ledger (`@nomicfoundation/hardhat-ledger` answers the request on
 * the device) or a remote signer behind an RPC URL. A private key is signed with here, for tests and CI only.
 *
 * @param provider The network (its accounts sign).
 * @param signer The owner.
 * @param typedData What to sign (see `safeTxTypedData`).
 * @param safeTxHash The hash the signature must be over, computed and checked beforehand.
 * @returns The 65-byte signature with v of 27 or 28, the form the Safe checks with ecrecover.
 * @throws SafeTaskError when the account refuses, answers something that is not a signature, or signs as someone else.
 */
export async function signSafeTxTypedData(
  provider: ChainProvider,
  signer: AccountSigner,
  typedData: SafeTxTypedData,
  safeTxHash: string,
): Promise<string> {
  const owner = signerAddress(signer);
  let signature: string;
  if ("privateKey" in signer) {
    const { EIP712Domain: _domainType, ...types } = typedData.types;
    signature = await new ethers.Wallet(signer.privateKey).signTypedData(typedData.domain, types, typedData.message);
  } else {
    try {
      signature = (await toEthersProvider(provider).send("eth_signTypedData_v4", [
        owner.toLowerCase(),
        JSON.stringify(typedData),
      ])) as string;
    } catch (error) {
      throw new SafeTaskError(`${owner} did not sign (eth_signTypedData_v4 failed): ${(error as Error).message}`);
    }
  }
  if (typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
    throw new SafeTaskError(`${owner}'s signer returned something that is not a 65-byte signature`);
  }
  // Some signers (Ledger among them) return v as 0/1; the Safe reads v of 27/28 as a plain ECDSA signature.
  const normalized = ethers.Signature.from(signature).serialized;
  const recovered = ethers.recoverAddress(safeTxHash, normalized);
  if (recovered !== owner) {
    throw new SafeTaskError(
      `the signature returned for ${owner} was made by ${recovered}: the signer signed something else; nothing written`,
    );
  }
  return normalized;
}
