import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress } from "../lib/addresses.js";
import { SafeTaskError } from "../lib/errors.js";
import { createGuardianProposal } from "../lib/proposal.js";
import {
  connect,
  loadContractNetworks,
  resolveRegistry,
  type OutputOptions,
  runSafeTask,
  saveNewProposal,
} from "./common.js";

interface ProposeGuardianArgs extends OutputOptions {
  registry: string;
  safe: string;
  guardian: string;
  file: string | undefined;
  contracts: string;
}

/** `operators:propose-guardian`: writes a proposal file that sets (or, with the zero address, clears) the guardian. */
export default async function proposeGuardian(args: ProposeGuardianArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    if (args.guardian.trim() === "") {
      throw new SafeTaskError(
        "--guardian is required: the new guardian's address, or the zero address " +
          "0x0000000000000000000000000000000000000000 to disable the fast revoke path",
      );
    }
    const guardian = parseAddress(args.guardian, "--guardian");
    const safeAddress = args.safe === "" ? undefined : parseAddress(args.safe, "--safe");
    const { provider, chainId } = await connect(hre);
    const registryAddress = await resolveRegistry(hre, chainId, args.registry);
    const proposal = await createGuardianProposal({
      provider,
      contractNetworks: await loadContractNetworks(hre, chainId, args.contracts),
      registryAddress,
      safeAddress,
      guardian,
    });
    const file = await saveNewProposal(args.file, "guardian", proposal);
    return { file, proposal };
  }, args);
}
