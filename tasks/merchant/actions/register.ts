import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress } from "../../safe/lib/addresses.js";
import { type CommonArgs, openBilling, resolveAccount, runMerchantTask } from "../lib/context.js";
import { checkBeneficiary } from "../lib/merchant.js";
import { simulateAndSend } from "../lib/send.js";

interface Args extends CommonArgs {
  account: string;
  beneficiary: string;
}

/** `merchant:register`: registers the account as a merchant paid to `--beneficiary` (default: the account). */
export default async function register(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const context = await openBilling(hre, args.billing);
      const admin = await resolveAccount(context, args.account);
      const beneficiary = args.beneficiary === "" ? admin.address : parseAddress(args.beneficiary, "--beneficiary");
      checkBeneficiary(context, beneficiary);
      const billing = context.billing.connect(admin);
      const receipt = await simulateAndSend(billing.interface, "register the merchant", {
        staticCall: () => billing.registerMerchant.staticCall(beneficiary),
        send: () => billing.registerMerchant(beneficiary),
      });
      const event = receipt.logs
        .map((log) => billing.interface.parseLog(log))
        .find((parsed) => parsed?.name === "MerchantRegistered");
      if (event == null) throw new Error("the registration emitted no MerchantRegistered event");
      return {
        merchantId: event.args.merchantId as bigint,
        admin: admin.address,
        beneficiary,
        transactionHash: receipt.hash,
      };
    },
    (result) =>
      console.log(
        `Registered merchant ${result.merchantId}: admin ${result.admin}, paid to ${result.beneficiary} (transaction ${result.transactionHash}).`,
      ),
  );
}
