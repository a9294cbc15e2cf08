import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { signerAddress } from "../lib/chain.js";
import { signProposal } from "../lib/proposal.js";
import { readProposal, writeProposal } from "../lib/proposal-file.js";
import {
  connect,
  loadContractNetworks,
  requireFile,
  resolveSigner,
  runSafeTask,
  type SignerOptions,
} from "./common.js";
import { printProposal } from "./print.js";

interface SignArgs extends SignerOptions {
  file: string | undefined;
  contracts: string;
}

/** `operators:sign`: shows a proposal, signs it as one owner and adds the signature to the file. */
export default async function sign(args: SignArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const file = requireFile(args.file);
    const proposal = await readProposal(file);
    printProposal(proposal);
    const { provider, chainId } = await connect(hre);
    const signer = await resolveSigner(hre, provider, args);
    const signed = await signProposal({
      provider,
      contractNetworks: await loadContractNetworks(hre, chainId, args.contracts),
      proposal,
      signer,
    });
    await writeProposal(file, signed);
    console.log(`Signed by ${signerAddress(signer)}; ${signed.signatures.length} signature(s) in ${file}.`);
    return signed;
  });
}
