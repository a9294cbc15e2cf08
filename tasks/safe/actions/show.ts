import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { readProposal } from "../lib/proposal-file.js";
import { describeProposal } from "../lib/proposal-view.js";
import { connect, type OutputOptions, requireFile, runSafeTask } from "./common.js";
import { printProposalView } from "./print.js";

interface ShowArgs extends OutputOptions {
  proposal: string;
}

/** `operators:show <proposal>`: read-only; what the proposal does, who signed, and the hashes a device will show. */
export default async function show(args: ShowArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const file = requireFile(args.proposal);
    const proposal = await readProposal(file);
    const { provider } = await connect(hre);
    const view = await describeProposal(provider, proposal);
    printProposalView(view);
    return { file, ...view };
  }, args);
}
