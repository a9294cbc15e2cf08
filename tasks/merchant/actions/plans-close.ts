import { ethers } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { type CommonArgs, openBilling, resolveAccount, runMerchantTask } from "../lib/context.js";
import { MerchantTaskError } from "../lib/errors.js";
import { requireMerchantAdmin } from "../lib/merchant.js";
import { parseInteger } from "../lib/parse.js";
import { simulateAndSend } from "../lib/send.js";

interface Args extends CommonArgs {
  account: string;
  plan: string;
}

/** `plans:close`: closes a plan to new subscriptions; existing subscribers keep their terms and are still billed. */
export default async function plansClose(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const planId = parseInteger(args.plan, "--plan", 1n);
      const context = await openBilling(hre, args.billing);
      const plan = await context.billing.getPlan(planId);
      if (plan.token === ethers.ZeroAddress)
        throw new MerchantTaskError(`plan ${planId} does not exist (plans:list shows them)`);
      if (!plan.active) throw new MerchantTaskError(`plan ${planId} is already closed`);
      const admin = await resolveAccount(context, args.account);
      await requireMerchantAdmin(context, plan.merchantId, admin.address);
      const billing = context.billing.connect(admin);
      const receipt = await simulateAndSend(billing.interface, "close the plan", {
        staticCall: () => billing.setPlanActive.staticCall(planId, false),
        send: () => billing.setPlanActive(planId, false),
      });
      return { planId, merchantId: plan.merchantId, active: false, transactionHash: receipt.hash };
    },
    (result) =>
      console.log(
        `Closed plan ${result.planId} to new subscriptions; its subscribers are still billed (transaction ${result.transactionHash}).`,
      ),
  );
}
