import type { ContractTransactionReceipt, Interface } from "ethers";

import { MerchantTaskError } from "./errors.js";

/** A contract call the task is about to send: simulated first, so a refusal sends nothing. */
interface Call {
  staticCall: () => Promise<unknown>;
  send: () => Promise<{ wait: () => Promise<ContractTransactionReceipt | null> }>;
}

/** `Name(arg, ...)` for a revert the contract's interface knows, else the node's message. */
export function describeRevert(contract: Interface, error: unknown): string | undefined {
  const data = findRevertData(error);
  if (data !== undefined) {
    const parsed = contract.parseError(data);
    if (parsed !== null) return `${parsed.name}(${parsed.args.map(String).join(", ")})`;
  }
  return undefined;
}

function findRevertData(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth += 1) {
    const data = (current as { data?: unknown }).data;
    if (typeof data === "string" && data.startsWith("0x") && data.length >= 10) return data;
    current = (current as { cause?: unknown; error?: unknown }).cause ?? (current as { error?: unknown }).error;
  }
  return undefined;
}

/**
 * Simulates `call`, then sends it and waits for its receipt. A simulated revert the contract explains becomes a
 * {@link MerchantTaskError} naming the contract's error (nothing is sent); anything else propagates.
 *
 * @param what What the transaction does, for the error message ("create the plan").
 */
export async function simulateAndSend(
  contract: Interface,
  what: string,
  call: Call,
): Promise<ContractTransactionReceipt> {
  try {
    await call.staticCall();
  } catch (error) {
    const reason = describeRevert(contract, error);
    if (reason !== undefined) throw new MerchantTaskError(`the contract refuses to ${what}: ${reason}`);
    throw error;
  }
  const response = await call.send();
  const receipt = await response.wait();
  if (receipt === null || receipt.status !== 1) throw new Error(`the transaction to ${what} failed on chain`);
  return receipt;
}
