import type { Proposal } from "../lib/proposal-file.js";

/** Prints what a proposal will change, for the person about to sign or execute it. */
export function printProposal(proposal: Proposal): void {
  console.log(`Proposal for Safe ${proposal.safe} on chain ${proposal.chainId}, Safe nonce ${proposal.safeNonce}`);
  console.log(`  registry:   ${proposal.registry}`);
  for (const address of proposal.summary.remove) console.log(`  - remove operator ${address}`);
  for (const address of proposal.summary.add) console.log(`  + add operator    ${address}`);
  console.log(`  safeTxHash: ${proposal.safeTxHash}`);
  const signers = proposal.signatures.map((signature) => signature.signer);
  console.log(`  signatures: ${signers.length}${signers.length > 0 ? ` (${signers.join(", ")})` : ""}`);
}
