import { ethers } from "ethers";

import type { Proposal } from "../lib/proposal-file.js";
import type { ProposalView } from "../lib/proposal-view.js";
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

const list = (addresses: string[]) => (addresses.length === 0 ? "(none)" : addresses.join(", "));

/**
 * Prints everything an owner must check before signing, ending with the three hashes their device shows, so they can
 * compare them character by character with the device's screen (and with a second, independent tool).
 */
export function printProposalView(view: ProposalView): void {
  const { safe } = view;
  console.log(`Safe transaction on chain ${view.chainId}`);
  console.log(
    `  Safe:       ${safe.address} (Safe ${safe.version}, ${safe.threshold} of ${safe.owners.length} owners)`,
  );
  console.log(`  owners:     ${safe.owners.join(", ")}`);
  console.log(`  nonce:      ${view.safeNonce} (the Safe is at nonce ${safe.nonce})`);
  console.log(`  registry:   ${view.registry}`);
  view.calls.forEach((call, index) => {
    console.log(`  call ${index + 1}:     ${call.to}.${call.signature}, value ${call.value}, operation CALL`);
    for (const [name, value] of Object.entries(call.args)) {
      console.log(`                ${name}: ${Array.isArray(value) ? `[${value.join(", ")}]` : value}`);
    }
  });
  console.log(`  operators before: ${list(view.operators.before)}`);
  console.log(`  operators after:  ${list(view.operators.after)}`);
  const { before, after } = view.guardian;
  console.log(
    `  guardian:   ${before === after ? `${guardianLabel(before)} (unchanged)` : `${guardianLabel(before)} -> ${guardianLabel(after)}`}`,
  );
  const signers = view.signatures.map(({ signer, isOwner }) => (isOwner ? signer : `${signer} (NOT an owner)`));
  console.log(
    `  signatures: ${view.signatures.length} of ${safe.threshold}${signers.length > 0 ? ` (${signers.join(", ")})` : ""}` +
      (view.missingSignatures > 0 ? `; ${view.missingSignatures} more needed` : "; enough to execute"),
  );
  if (view.problem !== undefined) console.log(`  !           ${view.problem}`);
  console.log(`Hashes your device must show (computed here; ${view.hashesCheckedAgainst.join(" and ")} agree):`);
  console.log(`  domain hash:  ${view.hashes.domainHash}`);
  console.log(`  message hash: ${view.hashes.messageHash}`);
  console.log(`  safeTxHash:   ${view.hashes.safeTxHash}`);
}
