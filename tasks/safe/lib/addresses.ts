import { ethers } from "ethers";

import { SafeTaskError } from "./errors.js";

/**
 * Parses one address (any letter case, checksum checked when mixed case) into its checksummed form.
 *
 * @param value The text given by the user.
 * @param label What the address is, for the error message (e.g. `--safe`).
 * @throws SafeTaskError when `value` is not a 20-byte hex address or its mixed-case checksum is wrong.
 */
export function parseAddress(value: string, label: string): string {
  const trimmed = value.trim();
  if (!/^0x[0-9a-fA-F]{40}$/.test(trimmed)) {
    throw new SafeTaskError(`${label}: "${trimmed}" is not a valid address (expected 0x followed by 40 hex digits)`);
  }
  if (!ethers.isAddress(trimmed)) {
    // Mixed case that is not the EIP-55 checksum: most likely a typo, so name the address it would have been.
    throw new SafeTaskError(
      `${label}: "${trimmed}" has a bad checksum; did you mean ${ethers.getAddress(value.trim().toLowerCase())}? ` +
        "(check the address letter by letter before using it)",
    );
  }
  return ethers.getAddress(trimmed);
}

/**
 * Parses a comma-separated list of addresses, rejecting duplicates and the zero address.
 *
 * @param value The text given by the user; empty means an empty list.
 * @param label What the list is, for the error message (e.g. `--add`).
 * @throws SafeTaskError naming the first malformed, zero or repeated address.
 */
export function parseAddressList(value: string, label: string): string[] {
  const items = value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  const addresses = items.map((item) => parseAddress(item, label));
  const seen = new Set<string>();
  for (const address of addresses) {
    if (address === ethers.ZeroAddress) throw new SafeTaskError(`${label}: the zero address cannot be an operator`);
    if (seen.has(address)) throw new SafeTaskError(`${label}: ${address} is listed twice`);
    seen.add(address);
  }
  return addresses;
}
