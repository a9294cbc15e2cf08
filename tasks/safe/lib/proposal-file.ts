import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";

import { ethers } from "ethers";
import { z } from "zod";

import { SafeTaskError } from "./errors.js";
import { decodeRegistryCall, describeGuardianChange, describeRotation } from "./registry.js";
import { computeSafeTxHash } from "./safe-tx-hash.js";

const address = z
  .string()
  .refine((value) => ethers.isAddress(value), "must be a 0x-prefixed 20-byte address")
  .transform((value) => ethers.getAddress(value));
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be a 0x-prefixed 32-byte hex string");
const hexData = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, "must be 0x-prefixed hex bytes");
const uint = z.string().regex(/^\d+$/, "must be a decimal integer string");
const signatureBytes = z.string().regex(/^0x[0-9a-fA-F]{130}$/, "must be a 65-byte hex signature");

/** The Safe transaction, field for field as the Safe hashes it (EIP-712 `SafeTx`). */
const safeTransactionSchema = z
  .object({
    to: address,
    value: uint,
    data: hexData,
    operation: z.number().int().min(0).max(1),
    safeTxGas: uint,
    baseGas: uint,
    gasPrice: uint,
    gasToken: address,
    refundReceiver: address,
    nonce: z.number().int().nonnegative(),
  })
  .strict();

/** What the proposal does, for the people who sign it; checked against the transaction data on every read. */
const summarySchema = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("rotateOperators"),
      remove: z.array(address),
      add: z.array(address),
      description: z.string(),
    })
    .strict(),
  z
    .object({
      action: z.literal("setGuardian"),
      /** The guardian when the proposal was made (zero if none): signing and executing require it still is. */
      previousGuardian: address,
      /** Zero disables the fast revoke path. */
      guardian: address,
      description: z.string(),
    })
    .strict(),
]);

/** The file format written now; version 1 files (rotations only) are still read. */
export const PROPOSAL_VERSION = 2;

const proposalSchema = z
  .object({
    version: z.literal(PROPOSAL_VERSION),
    chainId: uint,
    safe: address,
    registry: address,
    safeNonce: z.number().int().nonnegative(),
    safeTxHash: bytes32,
    safeTransaction: safeTransactionSchema,
    summary: summarySchema,
    signatures: z.array(z.object({ signer: address, data: signatureBytes }).strict()),
    createdAt: z.string(),
  })
  .strict();

/** A proposal as stored in its JSON file: what every owner signs, and the signatures collected so far. */
export type Proposal = z.infer<typeof proposalSchema>;
/** What a {@link Proposal} does. */
export type ProposalSummary = Proposal["summary"];
/** The summary of a proposal that rotates operators. */
export type RotationSummary = Extract<ProposalSummary, { action: "rotateOperators" }>;
/** The summary of a proposal that sets the guardian. */
export type GuardianSummary = Extract<ProposalSummary, { action: "setGuardian" }>;
/** One owner's signature in a {@link Proposal}. */
export type ProposalSignature = Proposal["signatures"][number];
/** The Safe transaction of a {@link Proposal}. */
export type SafeTransactionFields = z.infer<typeof safeTransactionSchema>;

export { computeSafeTxHash } from "./safe-tx-hash.js";

/**
 * Checks everything about `proposal` that needs no chain: it only calls `rotateOperators` or `setGuardian` on the
 * registry (no value, no delegatecall, no gas refund), its summary says what its data does, its hash is that of its
 * contents, and every signature is by the owner it names over that hash.
 *
 * @param proposal A proposal parsed from a file.
 * @throws SafeTaskError naming the first inconsistency (a file edited after it was created or signed).
 */
export function checkProposalIntegrity(proposal: Proposal): void {
  const tx = proposal.safeTransaction;
  if (tx.to !== proposal.registry) {
    throw new SafeTaskError(
      `tampered proposal: the transaction targets ${tx.to}, not the registry ${proposal.registry}`,
    );
  }
  if (tx.nonce !== proposal.safeNonce) {
    throw new SafeTaskError(
      `tampered proposal: safeNonce ${proposal.safeNonce} but the transaction nonce is ${tx.nonce}`,
    );
  }
  const harmless =
    tx.value === "0" &&
    tx.operation === 0 &&
    tx.safeTxGas === "0" &&
    tx.baseGas === "0" &&
    tx.gasPrice === "0" &&
    tx.gasToken === ethers.ZeroAddress &&
    tx.refundReceiver === ethers.ZeroAddress;
  if (!harmless) {
    throw new SafeTaskError(
      "tampered proposal: a registry call sends no value, uses CALL (operation 0) and pays no gas refund " +
        "(all gas fields 0)",
    );
  }
  checkSummary(proposal.summary, tx.data);
  const hash = computeSafeTxHash(BigInt(proposal.chainId), proposal.safe, tx);
  if (hash !== proposal.safeTxHash.toLowerCase()) {
    throw new SafeTaskError(
      `tampered proposal: safeTxHash mismatch (file says ${proposal.safeTxHash}, its contents hash to ${hash})`,
    );
  }
  const seen = new Set<string>();
  for (const { signer, data } of proposal.signatures) {
    if (seen.has(signer)) throw new SafeTaskError(`tampered proposal: ${signer} has more than one signature`);
    seen.add(signer);
    let recovered: string;
    try {
      recovered = ethers.recoverAddress(proposal.safeTxHash, data);
    } catch {
      throw new SafeTaskError(`tampered proposal: the signature of ${signer} is malformed`);
    }
    if (recovered !== signer) {
      throw new SafeTaskError(`tampered proposal: the signature said to be by ${signer} was made by ${recovered}`);
    }
  }
}

/** Checks that `summary` says exactly what the transaction `data` does. */
function checkSummary(summary: ProposalSummary, data: string): void {
  const call = decodeRegistryCall(data);
  const sameList = (x: string[], y: string[]) => x.length === y.length && x.every((item, i) => item === y[i]);
  const same =
    call.action === "rotateOperators"
      ? summary.action === "rotateOperators" && sameList(call.remove, summary.remove) && sameList(call.add, summary.add)
      : summary.action === "setGuardian" && call.guardian === summary.guardian;
  if (!same) {
    const what = call.action === "rotateOperators" ? "operators" : "guardian";
    throw new SafeTaskError(`tampered proposal: the summary does not match the ${what} in the transaction data`);
  }
  const description =
    summary.action === "rotateOperators" ? describeRotation(summary) : describeGuardianChange(summary);
  if (summary.description !== description) {
    throw new SafeTaskError("tampered proposal: the summary description does not match the transaction data");
  }
}

/**
 * Reads a file written before guardian proposals existed (version 1: always a rotation, its summary without `action`)
 * as the current version, so proposals being signed when the tools were updated stay usable. Signatures cover the
 * Safe transaction only, which is unchanged.
 */
function upgradeLegacyProposal(json: unknown): unknown {
  if (typeof json !== "object" || json === null || (json as { version?: unknown }).version !== 1) return json;
  const { summary } = json as { summary?: unknown };
  const isRotation = typeof summary === "object" && summary !== null && !("action" in summary);
  return {
    ...json,
    version: PROPOSAL_VERSION,
    ...(isRotation ? { summary: { action: "rotateOperators", ...summary } } : {}),
  };
}

/**
 * Parses and checks a proposal's JSON text (schema, then {@link checkProposalIntegrity}).
 *
 * @param text The file's contents.
 * @param source Where it came from, for error messages.
 * @throws SafeTaskError on invalid JSON, a schema violation (naming the field) or an integrity failure.
 */
export function parseProposal(text: string, source: string): Proposal {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SafeTaskError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  const result = proposalSchema.safeParse(upgradeLegacyProposal(json));
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new SafeTaskError(`${source} is not a valid proposal: ${issues.join("; ")}`);
  }
  checkProposalIntegrity(result.data);
  return result.data;
}

/**
 * Reads, parses and checks a proposal file.
 *
 * @param file Path of the JSON file.
 * @throws SafeTaskError when the file is missing or invalid (see {@link parseProposal}).
 */
export async function readProposal(file: string): Promise<Proposal> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new SafeTaskError(`cannot read proposal file ${file}`);
  }
  return parseProposal(text, file);
}

/**
 * Writes `proposal` as pretty JSON, creating the folder if needed.
 *
 * @param file Destination.
 * @param proposal The proposal.
 * @param options `exclusive`: fail rather than overwrite an existing file (so a new proposal never replaces one being
 *   signed).
 */
export async function writeProposal(file: string, proposal: Proposal, options: { exclusive?: boolean } = {}) {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  try {
    await writeFile(file, `${JSON.stringify(proposal, null, 2)}\n`, { flag: options.exclusive ? "wx" : "w" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new SafeTaskError(`${file} already exists: choose another --file or delete it`);
    }
    throw error;
  }
}
