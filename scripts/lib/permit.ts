import { ethers } from "ethers";

/** The parts of an EIP-2612 token a permit signature needs. */
export interface PermitToken {
  name(): Promise<string>;
  nonces(owner: string): Promise<bigint>;
  getAddress(): Promise<string>;
}

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/**
 * Signs an EIP-2612 permit letting `spender` take `value` of `token` from `holder` until `deadline`. The domain is the
 * OpenZeppelin ERC20Permit one (name, version "1"); `nonce` defaults to the holder's current nonce.
 */
export async function signPermit(
  token: PermitToken,
  holder: ethers.Signer,
  spender: string,
  value: bigint,
  deadline: bigint,
  nonce?: bigint,
): Promise<ethers.Signature> {
  const owner = await holder.getAddress();
  const network = await holder.provider?.getNetwork();
  if (network === undefined) throw new Error("signPermit: the holder must be connected to a provider");
  const signature = await holder.signTypedData(
    { name: await token.name(), version: "1", chainId: network.chainId, verifyingContract: await token.getAddress() },
    PERMIT_TYPES,
    { owner, spender, value, nonce: nonce ?? (await token.nonces(owner)), deadline },
  );
  return ethers.Signature.from(signature);
}
