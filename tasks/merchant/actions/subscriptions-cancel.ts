import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { type CommonArgs, openBilling, resolveAccount, runMerchantTask } from "../lib/context.js";
import { MerchantTaskError } from "../lib/errors.js";
import { parseInteger } from "../lib/parse.js";
import { findSubscription, refOf } from "../lib/reads.js";
import { simulateAndSend } from "../lib/send.js";

interface Args extends CommonArgs {
  account: string;
  id: string;
  fromBlock: string;
}

/** `subscriptions:cancel`: the customer or the merchant's admin ends a subscription; nothing more is charged. */
export default async function subscriptionsCancel(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const id = parseInteger(args.id, "--id", 1n, 2n ** 64n - 1n);
      const fromBlock =
        args.fromBlock === "" ? undefined : Number(parseInteger(args.fromBlock, "--from-block", 0n, 2n ** 53n));
      const context = await openBilling(hre, args.billing);
      const subscription = await findSubscription(context, id, fromBlock);
      if (subscription === undefined)
        throw new MerchantTaskError(`subscription ${id} does not exist (subscriptions:list shows them)`);
      if (subscription.status !== "active" && subscription.status !== "past-due") {
        throw new MerchantTaskError(`subscription ${id} is already ${subscription.status}`);
      }
      const account = await resolveAccount(context, args.account);
      const merchant = await context.billing.getMerchant(subscription.merchantId);
      if (account.address !== subscription.customer && account.address !== merchant.admin) {
        throw new MerchantTaskError(
          `${account.address} may not cancel subscription ${id}: only its customer ${subscription.customer} or merchant ${subscription.merchantId}'s admin ${merchant.admin}`,
        );
      }
      const billing = context.billing.connect(account);
      const ref = refOf(subscription);
      const receipt = await simulateAndSend(billing.interface, "cancel the subscription", {
        staticCall: () => billing.cancel.staticCall(ref),
        send: () => billing.cancel(ref),
      });
      return { id, cancelledBy: account.address, transactionHash: receipt.hash };
    },
    (result) => console.log(`Cancelled subscription ${result.id} (transaction ${result.transactionHash}).`),
  );
}
