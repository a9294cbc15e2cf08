import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddressList } from "../lib/addresses.js";
import { revokeOperators } from "../lib/operators.js";
import {
  connect,
  resolveRegistry,
  resolveSigner,
  type OutputOptions,
  runSafeTask,
  type SignerOptions,
} from "./common.js";

interface RevokeArgs extends SignerOptions, OutputOptions {
  registry: string;
  remove: string;
}

/** `operators:revoke`: the guardian's fast path, removing operators without the Safe. */
export default async function revoke(args: RevokeArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const accounts = parseAddressList(args.remove, "--remove");
    const { provider, chainId } = await connect(hre);
    const registryAddress = await resolveRegistry(hre, chainId, args.registry);
    const hash = await revokeOperators({
      provider,
      registryAddress,
      accounts,
      guardian: await resolveSigner(hre, provider, args),
    });
    console.log(`Revoked ${accounts.join(", ")} in transaction ${hash}.`);
    return { transactionHash: hash };
  }, args);
}
