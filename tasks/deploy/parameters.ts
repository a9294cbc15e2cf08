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
    throw new DeployParametersError(`${source} must be an object of modules, e.g. { "OperatorRegistry": { ... } }`);
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
  if (problems.size === 0) return;
  const [first, ...others] = problems.values();
  const also = others.length > 0 ? `; also invalid: ${[...problems.keys()].slice(1).join(", ")}` : "";
  throw new DeployParametersError(`${source}: ${first}${also}. Nothing was deployed.`);
}
