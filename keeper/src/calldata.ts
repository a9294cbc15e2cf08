// Calldata of the batch calls the scheduler makes thousands of times per wave (`chargeMany`, `areDue`), encoded and
// decoded straight from 32-byte words. ethers' ABI coder checksums every address (a keccak per address) and builds
// Result proxies: in a 100k-subscription wave that was a quarter of the keeper's CPU. `calldata.ts` tests compare
// every output with ethers' coder.
import { billingInterface } from "./sync/decode.js";

/** A subscription as the v2 contract addresses it: the id with the terms that locate its storage. */
export interface SubscriptionRef {
  id: bigint;
  customer: string;
  amount: bigint;
  token: string;
}

const selector = (name: string) => billingInterface.getFunction(name)!.selector.slice(2);
const SELECTORS = { chargeMany: selector("chargeMany"), areDue: selector("areDue") } as const;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const MAX_UINT256 = (1n << 256n) - 1n;

function uintWord(value: bigint, what: string): string {
  if (value < 0n || value > MAX_UINT256) throw new RangeError(`${what} ${value} is not a uint256`);
  return value.toString(16).padStart(64, "0");
}

function addressWord(value: string, what: string): string {
  if (!ADDRESS.test(value)) throw new TypeError(`${what} ${value} is not an address`);
  return value.slice(2).toLowerCase().padStart(64, "0");
}

/**
 * `chargeMany(refs)` or `areDue(refs)` calldata: the selector, the offset of the array (one word), its length, then
 * each `SubscriptionRef` (a static tuple) in place as four words.
 */
export function encodeRefsCall(fn: keyof typeof SELECTORS, refs: readonly SubscriptionRef[]): string {
  const parts = new Array<string>(refs.length * 4 + 3);
  parts[0] = `0x${SELECTORS[fn]}`;
  parts[1] = uintWord(32n, "offset");
  parts[2] = uintWord(BigInt(refs.length), "length");
  let i = 3;
  for (const ref of refs) {
    parts[i++] = uintWord(ref.id, "ref.id");
    parts[i++] = addressWord(ref.customer, "ref.customer");
    parts[i++] = uintWord(ref.amount, "ref.amount");
    parts[i++] = addressWord(ref.token, "ref.token");
  }
  return parts.join("");
}

/** Decodes a returned `bool[]` of `expected` items; throws on any other shape (a malformed answer). */
export function decodeBoolArray(result: string, expected: number): boolean[] {
  const hex = result.startsWith("0x") ? result.slice(2) : result;
  const word = (i: number) => hex.slice(i * 64, (i + 1) * 64);
  if (
    hex.length !== (expected + 2) * 64 ||
    BigInt(`0x${word(0)}`) !== 32n ||
    BigInt(`0x${word(1)}`) !== BigInt(expected)
  ) {
    throw new Error(`malformed bool[${expected}] answer (${hex.length / 2} bytes)`);
  }
  const out = new Array<boolean>(expected);
  for (let i = 0; i < expected; i++) {
    const w = word(i + 2);
    if (w === "0".repeat(64)) out[i] = false;
    else if (w === `${"0".repeat(63)}1`) out[i] = true;
    else throw new Error(`malformed bool[${expected}] answer: item ${i} is 0x${w}`);
  }
  return out;
}
