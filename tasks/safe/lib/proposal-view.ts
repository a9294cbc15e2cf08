import { ethers } from "ethers";

import { type ChainProvider, toEthersProvider } from "./chain.js";
import { SafeTaskError } from "./errors.js";
import { checkProposalIntegrity, type Proposal } from "./proposal-file.js";
import { checkProposalOnChain } from "./proposal.js";
import { openRegistry, operatorsAfter, registryInterface } from "./registry.js";
import { readSafeState, type SafeState } from "./safe-account.js";
import { type SafeTxHashes, verifiedSafeTxHashes } from "./safe-tx-hash.js";

/** One call the Safe transaction makes, decoded from its data (not from the file's summary). */
export interface DecodedCall {
  to: string;
  value: string;
  /** The function's full signature, e.g. `rotateOperators(address[],address[])`. */
  signature: string;
  /** Each argument by name. */
  args: Record<string, string | string[]>;
}

/** Everything an owner should see before signing or executing a proposal, read from the file and the chain. */
export interface ProposalView {
  chainId: string;
  safe: SafeState;
  registry: string;
  /** The nonce the proposal uses; compare with `safe.nonce`. */
  safeNonce: number;
  calls: DecodedCall[];
  operators: { before: string[]; after: string[] };
  guardian: { before: string; after: string };
  signatures: { signer: string; isOwner: boolean }[];
  /** Signatures still needed to execute (0 when enough). */
  missingSignatures: number;
  /** The hashes the owner's device shows, computed here and checked against protocol-kit and the Safe contract. */
  hashes: SafeTxHashes;
  hashesCheckedAgainst: string[];
  /** Why the proposal cannot be signed or executed now, or undefined when it can. */
  problem?: string;
}

const SAFE_HASH_ABI = [
  "function domainSeparator() view returns (bytes32)",
  "function getTransactionHash(address to, uint256 value, bytes data, uint8 operation, uint256 safeTxGas, " +
    "uint256 baseGas, uint256 gasPrice, address gasToken, address refundReceiver, uint256 _nonce) view returns (bytes32)",
];

/**
 * Reads what a proposal does against the chain, without sending anything: the decoded call, the operator set and
 * guardian before and after, the Safe (nonce, threshold, owners), who has signed, and the three hashes (computed here,
 * then checked against protocol-kit and against the Safe contract's own `domainSeparator` and `getTransactionHash`).
 *
 * @param provider The network of the proposal.
 * @param proposal A proposal read with `readProposal`.
 * @throws SafeTaskError when the file is inconsistent or the implementations disagree on a hash.
 */
export async function describeProposal(provider: ChainProvider, proposal: Proposal): Promise<ProposalView> {
  checkProposalIntegrity(proposal);
  const ethersProvider = toEthersProvider(provider);
  const chainId = BigInt(proposal.chainId);
  const { chainId: networkChainId } = await ethersProvider.getNetwork();
  if (networkChainId !== chainId) {
    throw new SafeTaskError(`the proposal is for chain ${proposal.chainId} but the network is chain ${networkChainId}`);
  }
  const safe = await readSafeState(ethersProvider, proposal.safe);
  const tx = proposal.safeTransaction;
  const hashes = verifiedSafeTxHashes(chainId, proposal.safe, tx, safe.version);
  const safeContract = new ethers.Contract(proposal.safe, SAFE_HASH_ABI, ethersProvider);
  const [domainSeparator, onChainHash] = (await Promise.all([
    safeContract.domainSeparator(),
    safeContract.getTransactionHash(
      tx.to,
      tx.value,
      tx.data,
      tx.operation,
      tx.safeTxGas,
      tx.baseGas,
      tx.gasPrice,
      tx.gasToken,
      tx.refundReceiver,
      tx.nonce,
    ),
  ])) as [string, string];
  if (domainSeparator.toLowerCase() !== hashes.domainHash || onChainHash.toLowerCase() !== hashes.safeTxHash) {
    throw new SafeTaskError(
      `hash disagreement with the Safe contract (domain ${domainSeparator}, safeTxHash ${onChainHash}); do not sign`,
    );
  }

  const registry = await openRegistry(ethersProvider, proposal.registry);
  const before = ((await registry.operators()) as string[]).map((a) => ethers.getAddress(a));
  const guardianBefore = ethers.getAddress((await registry.guardian()) as string);
  const parsed = registryInterface.parseTransaction({ data: tx.data });
  if (parsed === null) throw new SafeTaskError("the proposal's transaction data is not a registry call");
  const args: Record<string, string | string[]> = {};
  parsed.fragment.inputs.forEach((input, index) => {
    const value = parsed.args[index] as string | string[];
    args[input.name] = Array.isArray(value) ? value.map((a) => ethers.getAddress(a)) : ethers.getAddress(value);
  });
  const { summary } = proposal;
  const after = summary.action === "rotateOperators" ? operatorsAfter(before, summary) : before;
  const guardianAfter = summary.action === "setGuardian" ? summary.guardian : guardianBefore;

  let problem: string | undefined;
  try {
    await checkProposalOnChain(provider, proposal);
  } catch (error) {
    if (!(error instanceof SafeTaskError)) throw error;
    problem = error.message;
  }
  return {
    chainId: proposal.chainId,
    safe,
    registry: proposal.registry,
    safeNonce: proposal.safeNonce,
    calls: [{ to: tx.to, value: tx.value, signature: parsed.signature, args }],
    operators: { before, after },
    guardian: { before: guardianBefore, after: guardianAfter },
    signatures: proposal.signatures.map(({ signer }) => ({ signer, isOwner: safe.owners.includes(signer) })),
    missingSignatures: Math.max(0, safe.threshold - proposal.signatures.length),
    hashes,
    hashesCheckedAgainst: ["protocol-kit", "the Safe contract (domainSeparator, getTransactionHash)"],
    problem,
  };
}
