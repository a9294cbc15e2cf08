import { SafeTaskError } from "./errors.js";
import { checkProposalIntegrity, type Proposal, type ProposalSignature } from "./proposal-file.js";

/** One copy of a proposal and where it came from (a file name, for error messages). */
export interface ProposalCopy {
  source: string;
  proposal: Proposal;
}

/**
 * What must be identical for two files to be copies of one Safe transaction, in the order differences are reported:
 * the most telling first. The safeTxHash covers the chain, the Safe and every transaction field; the summary is
 * compared too, so the merged file shows each signer what they saw.
 */
const IDENTITY: { name: string; of: (proposal: Proposal) => unknown; shown?: boolean }[] = [
  { name: "safe", of: (p) => p.safe, shown: true },
  { name: "chain", of: (p) => p.chainId, shown: true },
  { name: "registry", of: (p) => p.registry, shown: true },
  { name: "transaction target (to)", of: (p) => p.safeTransaction.to, shown: true },
  { name: "Safe nonce", of: (p) => p.safeTransaction.nonce, shown: true },
  { name: "transaction data", of: (p) => p.safeTransaction.data.toLowerCase() },
  { name: "safeTxHash", of: (p) => p.safeTxHash.toLowerCase(), shown: true },
  { name: "summary", of: (p) => JSON.stringify(p.summary) },
];

/**
 * Merges copies of one proposal signed separately (owners who signed in parallel, each from the same proposed file)
 * into one proposal holding every owner's signature once. Needs no chain: `operators:execute` re-checks everything
 * against it.
 *
 * @param copies At least two proposals, each already checked by `checkProposalIntegrity` (as `readProposal` does).
 * @returns The first copy with the union of the signatures, in order of first appearance; an owner's signature found
 *   in several copies is kept once (any of them is valid over the same hash).
 * @throws SafeTaskError when fewer than two copies are given or one is not the same Safe transaction as the first.
 */
export function mergeProposals(copies: ProposalCopy[]): Proposal {
  if (copies.length < 2) throw new SafeTaskError("give at least two proposal files to merge");
  const [first, ...others] = copies;
  for (const other of others) {
    for (const field of IDENTITY) {
      const [mine, theirs] = [field.of(first.proposal), field.of(other.proposal)];
      if (mine !== theirs) {
        const values = field.shown === true ? ` (${String(mine)} vs ${String(theirs)})` : "";
        throw new SafeTaskError(
          `${other.source} is not a copy of the same Safe transaction as ${first.source}: the ${field.name} ` +
            `differs${values}; only copies of one proposal can be merged`,
        );
      }
    }
  }
  const bySigner = new Map<string, ProposalSignature>();
  for (const { proposal } of copies) {
    for (const signature of proposal.signatures) {
      if (!bySigner.has(signature.signer)) bySigner.set(signature.signer, signature);
    }
  }
  const merged: Proposal = { ...first.proposal, signatures: [...bySigner.values()] };
  checkProposalIntegrity(merged);
  return merged;
}
