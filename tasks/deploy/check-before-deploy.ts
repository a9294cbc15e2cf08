import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

import type { DeploymentParameters, IgnitionModule } from "@nomicfoundation/ignition-core";
import { ethers } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { TaskArguments } from "hardhat/types/tasks";
import { errorResult } from "hardhat/utils/result";

import { checkDeploymentParameters, DeployParametersError, parseParametersJson } from "./parameters.js";

/**
 * `ignition deploy`, preceded by a check of the parameters against the contracts' constructors: a placeholder left in
 * a parameters file fails here in one line naming the parameter and the file, before Ignition asks for confirmation
 * or journals anything. Whatever this check cannot read (a module that does not load, a JSON5 file) is left to
 * Ignition, which reports it itself.
 */
export default async function checkThenDeploy(
  args: TaskArguments,
  hre: HardhatRuntimeEnvironment,
  runSuper: (args: TaskArguments) => Promise<unknown>,
) {
  try {
    await checkParameters(args.modulePath as string, args.parameters as string | undefined, hre);
  } catch (error) {
    if (!(error instanceof DeployParametersError)) throw error;
    console.error(`Error: ${error.message}`);
    return errorResult(error);
  }
  return runSuper(args);
}

async function checkParameters(modulePath: string, input: string | undefined, hre: HardhatRuntimeEnvironment) {
  const module = await importModule(modulePath);
  if (module === undefined) return;
  const found = await readParameters(input, path.join(hre.config.paths.ignition, `${module.id}.config.json`));
  if (found === undefined) return;
  // Constructor ABIs come from the artifacts. Build only when one is missing (a fresh clone), as Ignition would anyway:
  // its production build does not reuse a test build's output, so an unconditional build costs a full compilation.
  const readInputs = async (contractName: string) => {
    try {
      return ethers.Interface.from((await hre.artifacts.readArtifact(contractName)).abi).deploy.inputs;
    } catch {
      return undefined;
    }
  };
  let built = false;
  try {
    await checkDeploymentParameters(module, found.parameters, found.source, async (contractName) => {
      const inputs = await readInputs(contractName);
      if (inputs !== undefined || built) return inputs;
      await hre.tasks.getTask("build").run({ quiet: true, noTests: true, defaultBuildProfile: "production" });
      built = true;
      await hre.artifacts.clearCache();
      return readInputs(contractName);
    });
  } finally {
    // The artifact manager caches the list of artifacts it saw (none before a first build): let Ignition read afresh.
    await hre.artifacts.clearCache();
  }
}

/** The module the way Ignition loads it, or undefined when it does not load (Ignition then reports why). */
async function importModule(modulePath: string): Promise<IgnitionModule | undefined> {
  try {
    const imported = (await import(pathToFileURL(path.resolve(modulePath)).href)) as { default?: unknown };
    const module = (imported.default ?? imported) as Partial<IgnitionModule>;
    return typeof module.id === "string" && module.futures instanceof Set ? (module as IgnitionModule) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The parameters Ignition will use, from the sources it uses: `--parameters` (a .json file, or inline JSON), else the
 * module's `<id>.config.json` next to the modules. Undefined when there are none or they are JSON5.
 */
async function readParameters(
  input: string | undefined,
  moduleConfigFile: string,
): Promise<{ parameters: DeploymentParameters; source: string } | undefined> {
  const file = input === undefined ? moduleConfigFile : input.endsWith(".json") ? input : undefined;
  if (file === undefined) {
    if (input === undefined || input.endsWith(".json5")) return undefined;
    try {
      return { parameters: parseParametersJson(input, "--parameters"), source: "--parameters" };
    } catch {
      return undefined;
    }
  }
  let text: string;
  try {
    text = await readFile(path.resolve(file), "utf8");
  } catch {
    return undefined;
  }
  const relative = path.relative(process.cwd(), path.resolve(file));
  const source = relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
  return { parameters: parseParametersJson(text, source), source };
}
