/**
 * An error caused by bad input (an address, a key, a proposal file, the chain's state): its message names the problem
 * and what to do, and nothing was sent to the chain when it is thrown.
 */
export class SafeTaskError extends Error {
  override name = "SafeTaskError";
}
