import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress, parseAddressList } from "../lib/addresses.js";
import { createProposal } from "../lib/proposal.js";
import { connect, loadContractNetworks, resolveRegistry, runSafeTask, saveNewProposal } from "./common.js";

interface ProposeArgs {
  registry: string;
  safe: string;
  add: string;
  remove: string;
  file: string | undefined;
  contracts: string;
}

/** `operators:propose`: writes a rotation proposal file for the owners to sign. */
export default async function propose(args: ProposeArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const remove = parseAddressList(args.remove, "--remove");
    const add = parseAddressList(args.add, "--add");
    const safeAddress = args.safe === "" ? undefined : parseAddress(args.safe, "--safe");
    const { provider, chainId } = await connect(hre);
    const registryAddress = await resolveRegistry(hre, chainId, args.registry);
    const proposal = await createProposal({
      provider,
      contractNetworks: await loadContractNetworks(hre, chainId, args.contracts),
      registryAddress,
      safeAddress,
      remove,
      add,
    });
    const file = await saveNewProposal(args.file, "rotation", proposal);
    return { file, proposal };
  });
}
