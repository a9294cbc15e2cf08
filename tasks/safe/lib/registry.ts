import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";

/** The part of OperatorRegistry's ABI the Safe tasks use; kept here so the tasks run without a prior build. */
export const OPERATOR_REGISTRY_ABI = [
  "function rotateOperators(address[] remove, address[] add)",
  "function revokeOperators(address[] accounts)",
  "function setGuardian(address newGuardian)",
  "function operators() view returns (address[])",
  "function isOperator(address account) view returns (bool)",
  "function owner() view returns (address)",
  "function guardian() view returns (address)",
  "function pendingOwner() view returns (address)",
  "event OperatorAdded(address indexed operator)",
  "event OperatorRemoved(address indexed operator, address indexed by)",
  "event GuardianChanged(address indexed previousGuardian, address indexed newGuardian)",
  "error RegistryNotOperator(address operator)",
  "error RegistryAlreadyOperator(address operator)",
  "error RegistryZeroAddress()",
  "error RegistryUnauthorizedRevoker(address caller)",
  "error RegistryAdminAsOperator(address account)",
  "error RegistryOperatorAsAdmin(address account)",
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
 * Encodes `setGuardian(guardian)`.
 *
 * @param guardian The new guardian; the zero address disables the fast revoke path.
 */
export function encodeGuardianChange(guardian: string): string {
  return registryInterface.encodeFunctionData("setGuardian", [guardian]);
}

/** A registry call that the owner Safe can be asked to make. */
export type RegistryCall = ({ action: "rotateOperators" } & Rotation) | { action: "setGuardian"; guardian: string };

/**
 * Decodes calldata that must be a `rotateOperators` or `setGuardian` call: the only registry calls a proposal may make.
 *
 * @param data The calldata.
 * @throws SafeTaskError when it is anything else.
 */
export function decodeRegistryCall(data: string): RegistryCall {
  let parsed: ethers.TransactionDescription | null = null;
  try {
    parsed = registryInterface.parseTransaction({ data });
  } catch {
    parsed = null;
  }
  if (parsed?.name === "rotateOperators") {
    return {
      action: "rotateOperators",
      remove: (parsed.args[0] as string[]).map((a) => ethers.getAddress(a)),
      add: (parsed.args[1] as string[]).map((a) => ethers.getAddress(a)),
    };
  }
  if (parsed?.name === "setGuardian") {
    return { action: "setGuardian", guardian: ethers.getAddress(parsed.args[0] as string) };
  }
  throw new SafeTaskError(
    "the proposal's transaction data is not an OperatorRegistry.rotateOperators or setGuardian call",
  );
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

/** Who administers a registry: none of them may ever be an operator (the contract refuses it too). */
export interface RegistryAdmins {
  /** The owner Safe. */
  owner: string;
  /** Zero when no ownership transfer is pending. */
  pendingOwner: string;
  /** Zero when there is none. */
  guardian: string;
}

/**
 * Reads the registry's owner, pending owner and guardian.
 *
 * @param registry A registry opened with {@link openRegistry}.
 */
export async function readRegistryAdmins(registry: ethers.Contract): Promise<RegistryAdmins> {
  const [owner, pendingOwner, guardian] = await Promise.all([
    registry.owner() as Promise<string>,
    registry.pendingOwner() as Promise<string>,
    registry.guardian() as Promise<string>,
  ]);
  return {
    owner: ethers.getAddress(owner),
    pendingOwner: ethers.getAddress(pendingOwner),
    guardian: ethers.getAddress(guardian),
  };
}

/**
 * Checks that `rotation` applies cleanly to the registry's current operators, with the contract's own rules:
 * every removed address is an operator, every added one is not (once the removals are done) and holds no admin role
 * (the owner Safe, a pending owner or the guardian: a leaked hot key must never also administer operators).
 *
 * @param current The registry's operators now.
 * @param rotation The change.
 * @param admins The registry's admins now; when given, adding one of them is refused.
 * @throws SafeTaskError naming the first address that breaks a rule.
 */
export function checkRotationApplies(current: string[], rotation: Rotation, admins?: RegistryAdmins): void {
  if (rotation.remove.length === 0 && rotation.add.length === 0) {
    throw new SafeTaskError("nothing to do: give at least one operator to --add or --remove");
  }
  const operators = new Set(current.map((a) => ethers.getAddress(a)));
  for (const address of rotation.remove) {
    if (!operators.has(address)) throw new SafeTaskError(`cannot remove ${address}: it is not an operator`);
    operators.delete(address);
  }
  for (const address of rotation.add) {
    if (admins !== undefined) checkNotAdmin(address, admins);
    if (operators.has(address)) throw new SafeTaskError(`cannot add ${address}: it is already an operator`);
    operators.add(address);
  }
}

function checkNotAdmin(address: string, admins: RegistryAdmins): void {
  const role =
    address === admins.owner
      ? "the Safe that owns the registry"
      : address === admins.pendingOwner
        ? "the registry's pending owner"
        : address === admins.guardian
          ? "the registry's guardian"
          : undefined;
  if (role !== undefined) {
    throw new SafeTaskError(
      `cannot add ${address} as an operator: it is ${role}, and an admin can never be an operator ` +
        "(the registry refuses it with RegistryAdminAsOperator); use a separate hot key",
    );
  }
}

/**
 * The operator set after `rotation`, in the order the registry will list it: its enumerable set removes by moving the
 * last operator into the freed slot, and adds at the end.
 *
 * @param current The registry's operators now, in its order.
 * @param rotation The change, already checked with {@link checkRotationApplies}.
 */
export function operatorsAfter(current: string[], rotation: Rotation): string[] {
  const operators = current.map((a) => ethers.getAddress(a));
  for (const address of rotation.remove) {
    const index = operators.indexOf(address);
    if (index < 0) continue;
    const last = operators.pop() as string;
    if (index < operators.length) operators[index] = last;
  }
  return [...operators, ...rotation.add];
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

/** A change of guardian: the one the proposal replaces (zero if none) and the new one (zero to disable). */
export interface GuardianChange {
  previousGuardian: string;
  guardian: string;
}

/**
 * Checks that `change` makes sense on the registry now: its guardian is still the one the change replaces, the change
 * does something, and the new guardian is neither an operator (a leaked operator key could then remove every operator)
 * nor the owner (which can already revoke).
 *
 * @param registry The registry's owner, guardian and operators now.
 * @param change The change.
 * @throws SafeTaskError naming what is wrong.
 */
export function checkGuardianChange(
  registry: { owner: string; guardian: string; operators: string[] },
  change: GuardianChange,
): void {
  const current = ethers.getAddress(registry.guardian);
  if (current !== change.previousGuardian) {
    throw new SafeTaskError(
      `the registry's guardian is now ${guardianLabel(current)}, not ${guardianLabel(change.previousGuardian)} as ` +
        "the proposal expects: create a new proposal",
    );
  }
  if (change.guardian === current) {
    throw new SafeTaskError(
      change.guardian === ethers.ZeroAddress
        ? "nothing to do: the registry has no guardian already"
        : `nothing to do: ${change.guardian} is already the guardian`,
    );
  }
  if (registry.operators.some((operator) => ethers.getAddress(operator) === change.guardian)) {
    throw new SafeTaskError(
      `the new guardian ${change.guardian} is an operator: a leaked operator key could then revoke every operator; ` +
        "choose a separate account",
    );
  }
  if (change.guardian === ethers.getAddress(registry.owner)) {
    throw new SafeTaskError(
      `the new guardian ${change.guardian} is the registry's owner, which can already revoke: choose another account, ` +
        "or the zero address to disable the fast path",
    );
  }
}

/**
 * A guardian for people: the address, or "none" for the zero address.
 *
 * @param guardian The address.
 */
export function guardianLabel(guardian: string): string {
  return guardian === ethers.ZeroAddress ? "none" : guardian;
}

/**
 * A one-line, human-readable description of `change`, saying what the zero address means.
 *
 * @param change The change.
 */
export function describeGuardianChange(change: GuardianChange): string {
  if (change.guardian === ethers.ZeroAddress) {
    return (
      `remove guardian ${change.previousGuardian}: the zero address disables the fast revoke path ` +
      "(only the Safe can remove operators)"
    );
  }
  const was = change.previousGuardian === ethers.ZeroAddress ? "none before" : `replacing ${change.previousGuardian}`;
  return `set guardian ${change.guardian} (${was}): it may remove operators at once, never add them`;
}
