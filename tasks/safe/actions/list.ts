import { ethers } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { toEthersProvider } from "../lib/chain.js";
import { SafeTaskError } from "../lib/errors.js";
import { listOperators } from "../lib/operators.js";
import { readSafeState } from "../lib/safe-account.js";
import { connect, resolveRegistry, type OutputOptions, runSafeTask } from "./common.js";

interface ListArgs extends OutputOptions {
  registry: string;
}

/** `operators:list`: the registry's operators and who administers them. */
export default async function list(args: ListArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const { provider, chainId } = await connect(hre);
    const state = await listOperators(provider, await resolveRegistry(hre, chainId, args.registry));
    console.log(`OperatorRegistry ${state.registry} on chain ${chainId}`);
    console.log(`  owner:    ${state.owner}`);
    try {
      const safe = await readSafeState(toEthersProvider(provider), state.owner);
      console.log(
        `            a Safe ${safe.version}, ${safe.threshold} of ${safe.owners.length}: ${safe.owners.join(", ")}`,
      );
      console.log(`            next Safe nonce: ${safe.nonce}`);
    } catch (error) {
      if (!(error instanceof SafeTaskError)) throw error;
      console.log("            (not a Safe)");
    }
    console.log(
      `  guardian: ${state.guardian}${state.guardian === ethers.ZeroAddress ? " (none: only the Safe can remove operators)" : ""}`,
    );
    console.log(`  operators (${state.operators.length}):`);
    for (const operator of state.operators) console.log(`    ${operator}`);
    return state;
  }, args);
}
