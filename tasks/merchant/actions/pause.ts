import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { type CommonArgs, openBilling, resolveAccount, runMerchantTask } from "../lib/context.js";
import { MerchantTaskError } from "../lib/errors.js";
import { requireMerchantAdmin } from "../lib/merchant.js";
import { parseInteger } from "../lib/parse.js";
import { simulateAndSend } from "../lib/send.js";

interface Args extends CommonArgs {
  account: string;
  merchant: string;
}

/** Pauses (`pause` true) or resumes a merchant's billing; paused time does not count towards anyone's grace. */
async function setPaused(args: Args, hre: HardhatRuntimeEnvironment, pause: boolean) {
  const verb = pause ? "pause" : "resume";
  return runMerchantTask(
    args.json,
    async () => {
      const merchantId = parseInteger(args.merchant, "--merchant", 1n);
      const context = await openBilling(hre, args.billing);
      const admin = await resolveAccount(context, args.account);
      const merchant = await requireMerchantAdmin(context, merchantId, admin.address);
      if (merchant.billing.paused === pause) {
        throw new MerchantTaskError(`merchant ${merchantId}'s billing is already ${pause ? "paused" : "running"}`);
      }
      const billing = context.billing.connect(admin);
      const receipt = await simulateAndSend(billing.interface, `${verb} the merchant`, {
        staticCall: () => billing.setMerchantPaused.staticCall(merchantId, pause),
        send: () => billing.setMerchantPaused(merchantId, pause),
      });
      return { merchantId, paused: pause, transactionHash: receipt.hash };
    },
    (result) =>
      console.log(
        `Merchant ${result.merchantId}'s billing is ${result.paused ? "paused" : "running again"} (transaction ${result.transactionHash}).`,
      ),
  );
}

/** `merchant:pause`. */
export default async function pause(args: Args, hre: HardhatRuntimeEnvironment) {
  return setPaused(args, hre, true);
}

/** `merchant:resume`, shared with {@link pause}. */
export async function resume(args: Args, hre: HardhatRuntimeEnvironment) {
  return setPaused(args, hre, false);
}
