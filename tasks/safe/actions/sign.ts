import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { signerAddress } from "../lib/chain.js";
import { SafeTaskError } from "../lib/errors.js";
import { signProposal } from "../lib/proposal.js";
import { readProposal, writeProposal } from "../lib/proposal-file.js";
import { describeProposal } from "../lib/proposal-view.js";
import {
  connect,
  loadContractNetworks,
  type OutputOptions,
  requireFile,
  resolveSigner,
  runSafeTask,
  type SignerOptions,
} from "./common.js";
import { confirm } from "./confirm.js";
import { printProposalView } from "./print.js";

interface SignArgs extends SignerOptions, OutputOptions {
  file: string | undefined;
  contracts: string;
  yes: boolean;
}

/**
 * `operators:sign`: shows what the proposal does and the hashes the owner's device will show, asks for confirmation
 * (or takes `--yes`), signs through the network's account and adds the signature to the file.
 */
export default async function sign(args: SignArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const file = requireFile(args.file);
    const proposal = await readProposal(file);
    const { provider, chainId } = await connect(hre);
    const signer = await resolveSigner(hre, provider, args);
    const view = await describeProposal(provider, proposal);
    printProposalView(view);
    if (view.problem !== undefined) throw new SafeTaskError(view.problem);
    const owner = signerAddress(signer);
    await confirm(
      `Sign safeTxHash ${view.hashes.safeTxHash} as ${owner}? Check that your device shows the same hashes`,
      args.yes,
    );
    const signed = await signProposal({
      provider,
      contractNetworks: await loadContractNetworks(hre, chainId, args.contracts),
      proposal,
      signer,
    });
    await writeProposal(file, signed);
    console.log(`Signed by ${owner}; ${signed.signatures.length} signature(s) in ${file}.`);
    return { file, signer: owner, safeTxHash: signed.safeTxHash, signatures: signed.signatures };
  }, args);
}
