import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress } from "../../safe/lib/addresses.js";
import { type CommonArgs, openBilling, resolveAccount, runMerchantTask } from "../lib/context.js";
import { MerchantTaskError } from "../lib/errors.js";
import { checkBeneficiary, requireMerchantAdmin } from "../lib/merchant.js";
import { parseInteger } from "../lib/parse.js";
import { simulateAndSend } from "../lib/send.js";

interface Args extends CommonArgs {
  account: string;
  merchant: string;
  beneficiary: string;
}

/** `merchant:beneficiary`: changes where a merchant's charges are paid. */
export default async function beneficiary(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const merchantId = parseInteger(args.merchant, "--merchant", 1n);
      if (args.beneficiary === "") throw new MerchantTaskError("--beneficiary is required: the new address to pay");
      const newBeneficiary = parseAddress(args.beneficiary, "--beneficiary");
      const context = await openBilling(hre, args.billing);
      checkBeneficiary(context, newBeneficiary);
      const admin = await resolveAccount(context, args.account);
      const merchant = await requireMerchantAdmin(context, merchantId, admin.address);
      const previous = merchant.billing.beneficiary;
      if (previous === newBeneficiary)
        throw new MerchantTaskError(`merchant ${merchantId} is already paid to ${previous}`);
      const billing = context.billing.connect(admin);
      const receipt = await simulateAndSend(billing.interface, "change the beneficiary", {
        staticCall: () => billing.setBeneficiary.staticCall(merchantId, newBeneficiary),
        send: () => billing.setBeneficiary(merchantId, newBeneficiary),
      });
      return { merchantId, previousBeneficiary: previous, beneficiary: newBeneficiary, transactionHash: receipt.hash };
    },
    (result) =>
      console.log(
        `Merchant ${result.merchantId} is now paid to ${result.beneficiary} (was ${result.previousBeneficiary}; transaction ${result.transactionHash}).`,
      ),
  );
}
