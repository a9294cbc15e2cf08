import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";
import type { Proposal } from "./proposal-file.js";
import { registryInterface } from "./registry.js";

/**
 * A Safe{Wallet} Transaction Builder batch file (the format its "Load" button imports and its "Download" writes):
 * the transactions, the Safe they were made for, and a checksum over the whole batch.
 */
export interface TxBuilderBatch {
  version: string;
  chainId: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  meta: {
    name: string;
    description: string;
    txBuilderVersion: string;
    createdFromSafeAddress: string;
    createdFromOwnerAddress: string;
    checksum: string;
  };
  transactions: TxBuilderTransaction[];
}

/** One call of a batch: the raw data, and the ABI method with its inputs for the app to display. */
export interface TxBuilderTransaction {
  to: string;
  value: string;
  data: string;
  contractMethod: {
    inputs: { internalType: string; name: string; type: string }[];
    name: string;
    payable: boolean;
  };
  contractInputsValues: Record<string, string>;
}

/** The batch format version and the Transaction Builder release whose format this follows. */
export const TX_BUILDER_FORMAT = { version: "1.0", txBuilderVersion: "1.18.2" };

/**
 * The Transaction Builder's serialization for its checksum: object keys sorted, each object written as the JSON list
 * of its keys followed by each value and a comma, undefined written as null.
 */
function serialize(json: unknown): string {
  if (Array.isArray(json)) return `[${json.map((item) => serialize(item)).join(",")}]`;
  if (typeof json === "object" && json !== null) {
    const keys = Object.keys(json).sort();
    const values = keys.map((key) => `${serialize((json as Record<string, unknown>)[key])},`).join("");
    return `{${JSON.stringify(keys)}${values}}`;
  }
  return json === undefined ? "null" : JSON.stringify(json);
}

/**
 * The checksum the Transaction Builder writes into `meta.checksum` and checks on import: keccak256 of the batch's
 * serialization with `meta.name` set to null (so renaming a batch keeps it valid).
 *
 * @param batch The batch; its own `meta.checksum` is part of what is hashed only if present, as in the app, so compute
 *   it over the batch without one.
 */
export function txBuilderChecksum(batch: Omit<TxBuilderBatch, "meta"> & { meta: Partial<TxBuilderBatch["meta"]> }) {
  return ethers.keccak256(ethers.toUtf8Bytes(serialize({ ...batch, meta: { ...batch.meta, name: null } })));
}

/** The Transaction Builder's text form of an argument: arrays as `[a,b]`, as its input fields take them. */
function inputValue(value: unknown): string {
  return Array.isArray(value) ? `[${value.map((item) => String(item)).join(",")}]` : String(value);
}

/**
 * The Transaction Builder batch for `proposal`: the same call to the registry, for owners who create, sign and execute
 * it in Safe{Wallet} instead of with these tasks. Safe{Wallet} assigns its own Safe nonce when the batch is created.
 *
 * @param proposal The proposal (rotation or guardian change).
 * @param options `createdAt` (milliseconds; default now) and the owner who exports it (default none).
 * @throws SafeTaskError when the proposal's call is not a registry call this tool knows.
 */
export function toTxBuilderBatch(
  proposal: Proposal,
  options: { createdAt?: number; owner?: string } = {},
): TxBuilderBatch {
  const tx = proposal.safeTransaction;
  const parsed = registryInterface.parseTransaction({ data: tx.data });
  if (parsed === null) throw new SafeTaskError("the proposal's transaction data is not a registry call");
  const contractInputsValues: Record<string, string> = {};
  parsed.fragment.inputs.forEach((input, index) => {
    contractInputsValues[input.name] = inputValue(parsed.args[index]);
  });
  const transaction: TxBuilderTransaction = {
    to: tx.to,
    value: tx.value,
    data: tx.data,
    contractMethod: {
      inputs: parsed.fragment.inputs.map((input) => ({ internalType: input.type, name: input.name, type: input.type })),
      name: parsed.name,
      payable: parsed.fragment.payable,
    },
    contractInputsValues,
  };
  const unsigned = {
    version: TX_BUILDER_FORMAT.version,
    chainId: proposal.chainId,
    createdAt: options.createdAt ?? Date.now(),
    meta: {
      name: `${proposal.summary.action} (Safe nonce ${proposal.safeNonce})`,
      description: proposal.summary.description,
      txBuilderVersion: TX_BUILDER_FORMAT.txBuilderVersion,
      createdFromSafeAddress: proposal.safe,
      createdFromOwnerAddress: options.owner ?? "",
    },
    transactions: [transaction],
  };
  return { ...unsigned, meta: { ...unsigned.meta, checksum: txBuilderChecksum(unsigned) } };
}
