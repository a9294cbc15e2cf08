// Ethereum log blooms (yellow paper, section 4.3.1): each log sets three bits of its block's 2048-bit bloom for its
// address (and three per topic). A block whose bloom lacks the billing contract's bits has none of its logs; one
// whose bloom has them very likely has some, so an empty eth_getLogs answer there is suspect (a lagging index).
import { getBytes, keccak256 } from "ethers";

/** The three bloom bit indexes (0..2047) of `value` (an address or topic). */
export function bloomBits(value: string): [number, number, number] {
  const hash = getBytes(keccak256(value));
  const bit = (i: number) => ((hash[i] << 8) | hash[i + 1]) & 2047;
  return [bit(0), bit(2), bit(4)];
}

/** Whether `bloom` (0x + 512 hex digits) has every bit of `value`: false means the block has no such log. */
export function bloomMayContain(bloom: string, value: string): boolean {
  const bytes = getBytes(bloom);
  if (bytes.length !== 256) throw new Error(`a logs bloom has 256 bytes, got ${bytes.length}`);
  // Bit i of the bloom is bit (i % 8) of byte 255 - floor(i / 8): the bloom is a big-endian 2048-bit number.
  return bloomBits(value).every((i) => (bytes[255 - Math.floor(i / 8)] & (1 << (i % 8))) !== 0);
}
