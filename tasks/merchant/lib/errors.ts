/**
 * Bad input to a merchant task (an id, an amount, a period, the chain's state): the message names the problem and
 * what to do, and nothing was sent to the chain when it is thrown.
 */
export class MerchantTaskError extends Error {
  override name = "MerchantTaskError";
}
