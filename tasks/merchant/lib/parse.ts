import { ethers } from "ethers";

import { MerchantTaskError } from "./errors.js";

const UINT32_MAX = 2n ** 32n - 1n;
const UINT96_MAX = 2n ** 96n - 1n;
const UNIT_SECONDS: Record<string, bigint> = { s: 1n, m: 60n, h: 3600n, d: 86_400n, w: 604_800n };

/**
 * Parses a whole number (an id, a count).
 *
 * @param value The text given by the user.
 * @param label The option, for the error message (e.g. `--plan`).
 * @param min Smallest value accepted.
 * @param max Largest value accepted.
 */
export function parseInteger(value: string, label: string, min = 0n, max = UINT32_MAX): bigint {
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed)) throw new MerchantTaskError(`${label}: "${trimmed}" is not a whole number`);
  const parsed = BigInt(trimmed);
  if (parsed < min || parsed > max) throw new MerchantTaskError(`${label}: ${parsed} is outside ${min}..${max}`);
  return parsed;
}

/**
 * Parses a duration: seconds (`3600`) or a number with a unit (`90s`, `15m`, `12h`, `30d`, `1w`).
 *
 * @param label The option, for the error message (e.g. `--period`).
 * @param min Shortest duration accepted, in seconds.
 * @returns Seconds; at most 2^32 - 1, the contract's limit.
 */
export function parseDuration(value: string, label: string, min = 0n): bigint {
  const match = /^(\d+)\s*([smhdw]?)$/i.exec(value.trim());
  if (match === null) {
    throw new MerchantTaskError(`${label}: "${value.trim()}" is not a duration (seconds, or e.g. 30d, 1w, 12h, 15m)`);
  }
  const seconds = BigInt(match[1]) * UNIT_SECONDS[(match[2] || "s").toLowerCase()];
  if (seconds < min)
    throw new MerchantTaskError(`${label}: ${formatDuration(seconds)} is shorter than ${formatDuration(min)}`);
  if (seconds > UINT32_MAX)
    throw new MerchantTaskError(`${label}: ${seconds} seconds is longer than the contract allows (${UINT32_MAX})`);
  return seconds;
}

/** A duration in the largest unit that divides it: 2592000 -> "30d". */
export function formatDuration(seconds: bigint): string {
  for (const unit of ["w", "d", "h", "m"]) {
    const size = UNIT_SECONDS[unit];
    if (seconds >= size && seconds % size === 0n) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/**
 * Parses an amount in token units ("9.99") into base units with the token's decimals.
 *
 * @param decimals The token's `decimals()`.
 * @param label The option, for the error message.
 * @returns Base units, above zero and within the contract's uint96 limit.
 */
export function parseTokenAmount(value: string, decimals: number, label: string): bigint {
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) {
    throw new MerchantTaskError(`${label}: "${trimmed}" is not an amount (token units, e.g. 9.99)`);
  }
  const fraction = trimmed.split(".")[1] ?? "";
  if (fraction.length > decimals) {
    throw new MerchantTaskError(`${label}: ${trimmed} has more than the token's ${decimals} decimals`);
  }
  const amount = ethers.parseUnits(trimmed, decimals);
  if (amount === 0n) throw new MerchantTaskError(`${label}: the amount must be above zero`);
  if (amount > UINT96_MAX) throw new MerchantTaskError(`${label}: ${trimmed} is above the contract's limit`);
  return amount;
}

/**
 * Parses a point in time: an ISO date or date-time (`2026-12-01`, `2026-12-01T12:00:00Z`) or Unix seconds.
 *
 * @returns Unix seconds.
 */
export function parseTime(value: string, label: string): bigint {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return BigInt(trimmed);
  const millis = /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (Number.isNaN(millis)) {
    throw new MerchantTaskError(`${label}: "${trimmed}" is not a date (YYYY-MM-DD, an ISO date-time or Unix seconds)`);
  }
  return BigInt(Math.floor(millis / 1000));
}

/** Unix seconds as an ISO date-time (UTC, no milliseconds). */
export function formatTime(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * Parses one of a fixed set of words.
 *
 * @param allowed The accepted values, lower case.
 */
export function parseChoice<T extends string>(value: string, allowed: readonly T[], label: string): T {
  const lower = value.trim().toLowerCase();
  const found = allowed.find((item) => item === lower);
  if (found === undefined)
    throw new MerchantTaskError(`${label}: "${value.trim()}" is not one of ${allowed.join(", ")}`);
  return found;
}
