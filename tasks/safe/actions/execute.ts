import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { executeProposal } from "../lib/proposal.js";
import { readProposal } from "../lib/proposal-file.js";
import { describeProposal } from "../lib/proposal-view.js";
import {
  connect,
  loadContractNetworks,
  requireFile,
  resolveSigner,
  runSafeTask,
  type SignerOptions,
  type OutputOptions,
} from "./common.js";
import { printProposalView } from "./print.js";

interface ExecuteArgs extends SignerOptions, OutputOptions {
  file: string | undefined;
  contracts: string;
}

/** `operators:execute`: executes a fully signed proposal in one transaction. */
export default async function execute(args: ExecuteArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const file = requireFile(args.file);
    const proposal = await readProposal(file);
    const { provider, chainId } = await connect(hre);
    printProposalView(await describeProposal(provider, proposal));
    const result = await executeProposal({
      provider,
      contractNetworks: await loadContractNetworks(hre, chainId, args.contracts),
      proposal,
      executor: await resolveSigner(hre, provider, args),
    });
    console.log(
      `Executed in transaction ${result.transactionHash} (block ${result.blockNumber}, gas ${result.gasUsed}).`,
    );
    return result;
  }, args);
}
