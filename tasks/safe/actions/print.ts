import { ethers } from "ethers";

import type { Proposal } from "../lib/proposal-file.js";
import { guardianLabel } from "../lib/registry.js";

/** Prints what a proposal will change, for the person about to sign, merge or execute it. */
export function printProposal(proposal: Proposal): void {
  console.log(`Proposal for Safe ${proposal.safe} on chain ${proposal.chainId}, Safe nonce ${proposal.safeNonce}`);
  console.log(`  registry:   ${proposal.registry}`);
  const { summary } = proposal;
  if (summary.action === "rotateOperators") {
    console.log("  call:       rotateOperators (every removal and addition in one transaction)");
    for (const address of summary.remove) console.log(`  - remove operator ${address}`);
    for (const address of summary.add) console.log(`  + add operator    ${address}`);
  } else {
    console.log(`  call:       setGuardian(${summary.guardian})`);
    console.log(`  guardian:   ${guardianLabel(summary.previousGuardian)} -> ${guardianLabel(summary.guardian)}`);
    console.log(
      summary.guardian === ethers.ZeroAddress
        ? "  !           the zero address DISABLES the guardian fast path: only the Safe can remove operators"
        : "              the guardian may remove operators at once (operators:revoke), never add them",
    );
  }
  console.log(`  safeTxHash: ${proposal.safeTxHash}`);
  const signers = proposal.signatures.map((signature) => signature.signer);
  console.log(`  signatures: ${signers.length}${signers.length > 0 ? ` (${signers.join(", ")})` : ""}`);
}
