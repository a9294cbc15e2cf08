import apiKit from "@safe-global/api-kit";

import { SafeTaskError } from "./errors.js";
import { checkProposalIntegrity, type Proposal } from "./proposal-file.js";

// Like protocol-kit: declarations typed as CommonJS, while Node loads the ESM build; accept both shapes.
const SafeApiKit = ((apiKit as unknown as { default?: unknown }).default ?? apiKit) as typeof apiKit.default;

/** Inputs of {@link sendProposalToService}. */
export interface SendToServiceOptions {
  /** The Safe Transaction Service's base URL, ending in `/api`. */
  serviceUrl: string;
  /** Needed by Safe's hosted services only. */
  apiKey?: string;
  proposal: Proposal;
}

/** What the service was given. */
export interface ServiceSubmission {
  serviceUrl: string;
  safeTxHash: string;
  /** The owner whose signature proposed the transaction. */
  proposedBy: string;
  /** The owners whose signatures were added as confirmations. */
  confirmedBy: string[];
}

/**
 * Hands a signed proposal to a Safe Transaction Service so co-owners can confirm it in Safe{Wallet}: the transaction
 * with its first signature (the service accepts proposals from owners only), then every other signature as a
 * confirmation. Nothing is sent to the chain.
 *
 * @throws SafeTaskError when the proposal has no signature or the service refuses a request.
 */
export async function sendProposalToService(options: SendToServiceOptions): Promise<ServiceSubmission> {
  const { proposal, serviceUrl } = options;
  checkProposalIntegrity(proposal);
  const [first, ...others] = proposal.signatures;
  if (first === undefined) {
    throw new SafeTaskError(
      "the proposal has no signature: the Safe Transaction Service accepts a transaction proposed by an owner only; " +
        "sign it first (operators:sign)",
    );
  }
  const api = new SafeApiKit({ chainId: BigInt(proposal.chainId), txServiceUrl: serviceUrl, apiKey: options.apiKey });
  const tx = proposal.safeTransaction;
  const refused = (what: string, error: unknown) =>
    new SafeTaskError(`the Safe Transaction Service at ${serviceUrl} refused ${what}: ${(error as Error).message}`);
  try {
    await api.proposeTransaction({
      safeAddress: proposal.safe,
      safeTransactionData: { ...tx, operation: tx.operation as 0 | 1 },
      safeTxHash: proposal.safeTxHash,
      senderAddress: first.signer,
      senderSignature: first.data,
      origin: "recurring-billing operators:send-to-service",
    });
  } catch (error) {
    throw refused("the proposal", error);
  }
  for (const { signer, data } of others) {
    try {
      await api.confirmTransaction(proposal.safeTxHash, data);
    } catch (error) {
      throw refused(`the confirmation of ${signer}`, error);
    }
  }
  return {
    serviceUrl,
    safeTxHash: proposal.safeTxHash,
    proposedBy: first.signer,
    confirmedBy: others.map(({ signer }) => signer),
  };
}
