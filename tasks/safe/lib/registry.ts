import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";

/** The part of OperatorRegistry's ABI the Safe tasks use; kept here so the tasks run without a prior build. */
export const OPERATOR_REGISTRY_ABI = [
  "function rotateOperators(address[] remove, address[] add)",
  "function revokeOperators(address[] accounts)",
  "function operators() view returns (address[])",
  "function isOperator(address account) view returns (bool)",
  "function owner() view returns (address)",
  "function guardian() view returns (address)",
  "event OperatorAdded(address indexed operator)",
  "event OperatorRemoved(address indexed operator, address indexed by)",
  "error RegistryNotOperator(address operator)",
  "error RegistryAlreadyOperator(address operator)",
  "error RegistryZeroAddress()",
  "error RegistryUnauthorizedRevoker(address caller)",
] as const;

export const registryInterface = new ethers.Interface(OPERATOR_REGISTRY_ABI);

/** A rotation: the operators to remove, then the ones to add, applied by one `rotateOperators` call. */
export interface Rotation {
  remove: string[];
  add: string[];
}

/**
 * Encodes `rotateOperators(remove, add)`.
 *
 * @param rotation The change.
 */
export function encodeRotation(rotation: Rotation): string {
  return registryInterface.encodeFunctionData("rotateOperators", [rotation.remove, rotation.add]);
}

/**
 * Decodes calldata that must be a `rotateOperators` call.
 *
 * @param data The calldata.
 * @throws SafeTaskError when it is anything else.
 */
export function decodeRotation(data: string): Rotation {
  let parsed: ethers.TransactionDescription | null = null;
  try {
    parsed = registryInterface.parseTransaction({ data });
  } catch {
    parsed = null;
  }
  if (parsed === null || parsed.name !== "rotateOperators") {
    throw new SafeTaskError("the proposal's transaction data is not an OperatorRegistry.rotateOperators call");
  }
  return {
    remove: (parsed.args[0] as string[]).map((a) => ethers.getAddress(a)),
    add: (parsed.args[1] as string[]).map((a) => ethers.getAddress(a)),
  };
}

/**
 * A connected view of an OperatorRegistry, checked to have code.
 *
 * @param runner A provider (reads) or signer (writes).
 * @param address The registry.
 * @throws SafeTaskError when no contract is deployed at `address` or it does not answer like a registry.
 */
export async function openRegistry(runner: ethers.ContractRunner, address: string): Promise<ethers.Contract> {
  const registry = new ethers.Contract(address, OPERATOR_REGISTRY_ABI, runner);
  const provider = runner.provider;
  if (provider !== null && (await provider.getCode(address)) === "0x") {
    throw new SafeTaskError(`${address} is not an OperatorRegistry: no contract is deployed there`);
  }
  try {
    await registry.operators();
  } catch {
    throw new SafeTaskError(`${address} is not an OperatorRegistry: it does not answer operators()`);
  }
  return registry;
}

/**
 * Checks that `rotation` applies cleanly to the registry's current operators, with the contract's own rule:
 * every removed address is an operator, every added one is not (once the removals are done).
 *
 * @param current The registry's operators now.
 * @param rotation The change.
 * @throws SafeTaskError naming the first address that breaks the rule.
 */
export function checkRotationApplies(current: string[], rotation: Rotation): void {
  if (rotation.remove.length === 0 && rotation.add.length === 0) {
    throw new SafeTaskError("nothing to do: give at least one operator to --add or --remove");
  }
  const operators = new Set(current.map((a) => ethers.getAddress(a)));
  for (const address of rotation.remove) {
    if (!operators.has(address)) throw new SafeTaskError(`cannot remove ${address}: it is not an operator`);
    operators.delete(address);
  }
  for (const address of rotation.add) {
    if (operators.has(address)) throw new SafeTaskError(`cannot add ${address}: it is already an operator`);
    operators.add(address);
  }
}

/**
 * A one-line, human-readable description of `rotation`.
 *
 * @param rotation The change.
 */
export function describeRotation(rotation: Rotation): string {
  const parts: string[] = [];
  if (rotation.remove.length > 0) parts.push(`remove operator(s) ${rotation.remove.join(", ")}`);
  if (rotation.add.length > 0) parts.push(`add operator(s) ${rotation.add.join(", ")}`);
  return `${parts.join(" and ")}, in one transaction`;
}
