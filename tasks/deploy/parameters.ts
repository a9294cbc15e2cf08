import {
  type DeploymentParameters,
  type Future,
  type IgnitionModule,
  isArtifactContractDeploymentFuture,
  isModuleParameterRuntimeValue,
  isNamedContractDeploymentFuture,
} from "@nomicfoundation/ignition-core";
import { ethers } from "ethers";

/** A parameters file (or module default) that would make a deployment fail: the message names it and the file. */
export class DeployParametersError extends Error {
  override name = "DeployParametersError";
}

/**
 * Parses a JSON parameters file the way Ignition does: a string such as `"604800n"` is a bigint.
 *
 * @param text The file's contents.
 * @param source The file, for the error message.
 * @throws DeployParametersError when it is not JSON or not an object of modules.
 */
export function parseParametersJson(text: string, source: string): DeploymentParameters {
  let json: unknown;
  try {
    json = JSON.parse(text, (_key, value: unknown) =>
      typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value,
    );
  } catch (error) {
    throw new DeployParametersError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new DeployParametersError(`${source} must be an object of modules, e.g. { "RecurringBilling": { ... } }`);
  }
  return json as DeploymentParameters;
}

/** The constructor inputs of a contract of the project, or undefined when it has no artifact. */
export type ConstructorInputs = (contractName: string) => Promise<readonly ethers.ParamType[] | undefined>;

/** Every future of `module` and of the modules it uses, each once. */
function allFutures(module: IgnitionModule, seen = new Set<IgnitionModule>()): Future[] {
  if (seen.has(module)) return [];
  seen.add(module);
  return [...[...module.submodules].flatMap((submodule) => allFutures(submodule, seen)), ...module.futures];
}

/** What the ABI expects of one value of `input` (the element type for an array). */
function expected(input: ethers.ParamType): string {
  return input.isArray() ? input.arrayChildren.type : input.type;
}

/**
 * Checks, before Ignition starts (and journals anything), that every module parameter passed directly as a
 * constructor argument ABI-encodes as that argument's type. Parameters without a value are left to Ignition, which
 * reports them clearly.
 *
 * @param module The module to deploy.
 * @param parameters The deployment parameters.
 * @param source Where the parameters come from (a file name), for the error message.
 * @param constructorInputs How to get a contract's constructor inputs.
 * @throws DeployParametersError naming the first invalid parameter, the value, what was expected and `source`, and
 *   listing the other invalid parameters, in one line.
 */
export async function checkDeploymentParameters(
  module: IgnitionModule,
  parameters: DeploymentParameters,
  source: string,
  constructorInputs: ConstructorInputs,
): Promise<void> {
  const problems = new Map<string, string>();
  for (const future of allFutures(module)) {
    if (!isNamedContractDeploymentFuture(future) && !isArtifactContractDeploymentFuture(future)) continue;
    const inputs = isArtifactContractDeploymentFuture(future)
      ? ethers.Interface.from(future.artifact.abi).deploy.inputs
      : await constructorInputs(future.contractName);
    if (inputs === undefined) continue;
    future.constructorArgs.forEach((arg, index) => {
      const input = inputs[index];
      if (!isModuleParameterRuntimeValue(arg) || input === undefined) return;
      const fromModule = parameters[arg.moduleId]?.[arg.name];
      const fromGlobal = parameters.$global?.[arg.name];
      const value = fromModule ?? fromGlobal ?? arg.defaultValue;
      if (value === undefined) return;
      const name =
        fromModule !== undefined
          ? `${arg.moduleId}.${arg.name}`
          : fromGlobal !== undefined
            ? `$global.${arg.name}`
            : `${arg.moduleId}.${arg.name} (its default in the module)`;
      try {
        ethers.AbiCoder.defaultAbiCoder().encode([input], [value]);
      } catch (error) {
        if (problems.has(name)) return;
        // ethers names the offending element of an array; show that rather than the whole list.
        const offending = (error as { value?: unknown }).value ?? value;
        const shown = typeof offending === "bigint" ? `${offending}n` : JSON.stringify(offending);
        const placeholder = typeof offending === "string" && /^<.*>$/.test(offending) ? ", a placeholder" : "";
        problems.set(
          name,
          `${name} is ${shown}${placeholder}, not a valid ${expected(input)} ` +
            `(constructor argument ${input.name || index} of ${future.contractName})`,
        );
      }
    });
  }
  if (problems.size === 0) checkBillingRules(module, parameters, problems);
  if (problems.size === 0) return;
  const [first, ...others] = problems.values();
  const also = others.length > 0 ? `; also invalid: ${[...problems.keys()].slice(1).join(", ")}` : "";
  throw new DeployParametersError(`${source}: ${first}${also}. Nothing was deployed.`);
}

/** The grace period bounds of RecurringBilling (MIN_GRACE_PERIOD, MAX_GRACE_PERIOD). */
const GRACE_PERIOD_RANGE = { min: 3_600n, max: 365n * 24n * 3_600n };

/**
 * The rules the contracts enforce at construction beyond ABI types, checked before anything is sent: every section
 * names a module of the deployment (contracts v2 has no OperatorRegistry module: the billing contract creates the
 * registry), the grace period is within 1 hour to 365 days, and no initial operator is the owner or the guardian.
 */
function checkBillingRules(module: IgnitionModule, parameters: DeploymentParameters, problems: Map<string, string>) {
  const modules = new Set(allFutures(module).map((future) => future.module.id));
  for (const section of Object.keys(parameters)) {
    if (section === "$global" || modules.has(section)) continue;
    const hint =
      section === "OperatorRegistry"
        ? "the registry is now created by RecurringBilling: move owner, initialOperators and guardian into the " +
          "RecurringBilling section"
        : `this deployment's modules are ${[...modules].join(", ")}`;
    problems.set(section, `section "${section}" is not a module of this deployment (${hint})`);
  }
  if (!modules.has("RecurringBilling")) return;
  const value = (name: string): unknown => parameters.RecurringBilling?.[name] ?? parameters.$global?.[name];
  const gracePeriod = value("gracePeriod");
  if (gracePeriod !== undefined) {
    const seconds = BigInt(gracePeriod as bigint | number | string);
    if (seconds < GRACE_PERIOD_RANGE.min || seconds > GRACE_PERIOD_RANGE.max) {
      problems.set(
        "RecurringBilling.gracePeriod",
        `RecurringBilling.gracePeriod is ${seconds} seconds, outside 3600 (1 hour) to 31536000 (365 days)`,
      );
    }
  }
  const operators = ((value("initialOperators") ?? []) as string[]).map((address) => ethers.getAddress(address));
  for (const role of ["owner", "guardian"]) {
    const admin = value(role);
    if (typeof admin !== "string" || admin === ethers.ZeroAddress) continue;
    if (operators.includes(ethers.getAddress(admin))) {
      problems.set(
        `RecurringBilling.initialOperators (${role})`,
        `RecurringBilling.initialOperators contains the ${role} ${ethers.getAddress(admin)}: an admin can never be ` +
          "an operator (the registry would revert with RegistryAdminAsOperator)",
      );
    }
  }
}
