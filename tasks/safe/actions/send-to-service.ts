import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { SafeTaskError } from "../lib/errors.js";
import { readProposal } from "../lib/proposal-file.js";
import { sendProposalToService } from "../lib/tx-service.js";
import { fetchConfigVariable, type OutputOptions, requireFile, runSafeTask } from "./common.js";

interface SendToServiceArgs extends OutputOptions {
  file: string | undefined;
  serviceUrl: string;
}

/**
 * `operators:send-to-service`: hands a signed proposal to a Safe Transaction Service (URL from `--service-url` or the
 * configuration variable SAFE_TX_SERVICE_URL; SAFE_TX_SERVICE_API_KEY when the service needs one).
 */
export default async function sendToService(args: SendToServiceArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const file = requireFile(args.file);
    const proposal = await readProposal(file);
    const serviceUrl = args.serviceUrl !== "" ? args.serviceUrl : await fetchConfigVariable(hre, "SAFE_TX_SERVICE_URL");
    if (!/^https?:\/\/[^\s]+$/.test(serviceUrl)) {
      throw new SafeTaskError(`the Safe Transaction Service URL "${serviceUrl}" is not an http(s) URL`);
    }
    const submission = await sendProposalToService({
      serviceUrl,
      apiKey: process.env.SAFE_TX_SERVICE_API_KEY,
      proposal,
    });
    console.log(
      `Proposed ${submission.safeTxHash} to ${serviceUrl} as ${submission.proposedBy}` +
        (submission.confirmedBy.length > 0 ? `, confirmed by ${submission.confirmedBy.join(", ")}` : "") +
        ". Co-owners can now confirm it in Safe{Wallet}; check that it shows the same safeTxHash.",
    );
    return submission;
  }, args);
}
