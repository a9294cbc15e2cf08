import { ethers } from "ethers";

import type { BillingContext } from "./context.js";
import { MerchantTaskError } from "./errors.js";

/**
 * Checks that merchant `merchantId` exists and that `account` administers it, before anything is sent.
 *
 * @returns The merchant as stored.
 */
export async function requireMerchantAdmin(context: BillingContext, merchantId: bigint, account: string) {
  const merchant = await context.billing.getMerchant(merchantId);
  if (merchant.admin === ethers.ZeroAddress) {
    throw new MerchantTaskError(`merchant ${merchantId} does not exist (merchant:register creates one)`);
  }
  if (merchant.admin !== account) {
    throw new MerchantTaskError(
      `${account} is not merchant ${merchantId}'s admin (its admin is ${merchant.admin}); use --account`,
    );
  }
  return merchant;
}

/** A beneficiary the contract accepts: not zero and not the billing contract itself (its tokens would be locked). */
export function checkBeneficiary(context: BillingContext, beneficiary: string): void {
  if (beneficiary === ethers.ZeroAddress) throw new MerchantTaskError("--beneficiary: the zero address cannot be paid");
  if (beneficiary === context.billingAddress) {
    throw new MerchantTaskError("--beneficiary: the billing contract itself cannot be paid (tokens would be locked)");
  }
}
