import type { Provider, Log, TopicFilter } from "ethers";

/** Most blocks one `eth_getLogs` request covers; halved when the node refuses a range, down to one block. */
export const MAX_LOG_RANGE = 5_000;

/**
 * Every log of `address` matching `topics` in [fromBlock, toBlock], read in bounded ranges (never one unbounded
 * request). A range the node refuses (too many results, range too large, timeout) is retried in halves.
 */
export async function getLogsBounded(
  provider: Provider,
  filter: { address: string; topics: TopicFilter; fromBlock: number; toBlock: number },
  maxRange = MAX_LOG_RANGE,
): Promise<Log[]> {
  const logs: Log[] = [];
  let from = filter.fromBlock;
  let range = maxRange;
  while (from <= filter.toBlock) {
    const to = Math.min(filter.toBlock, from + range - 1);
    try {
      logs.push(
        ...(await provider.getLogs({ address: filter.address, topics: filter.topics, fromBlock: from, toBlock: to })),
      );
      from = to + 1;
      range = maxRange;
    } catch (error) {
      if (range === 1) throw error;
      range = Math.max(1, Math.floor(range / 2));
    }
  }
  return logs;
}

/**
 * The block the contract at `address` was created in, found by bisection over `eth_getCode` (needs historical state,
 * which development nodes and archive providers keep); 0 when the node cannot answer for old blocks.
 */
export async function creationBlock(provider: Provider, address: string, head: number): Promise<number> {
  try {
    let low = 0;
    let high = head;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if ((await provider.getCode(address, middle)) === "0x") low = middle + 1;
      else high = middle;
    }
    return low;
  } catch {
    return 0;
  }
}

/**
 * The first block whose timestamp is at or after `time` (Unix seconds), by bisection; `head + 1` when none is.
 */
export async function blockAtOrAfter(
  provider: Provider,
  time: bigint,
  fromBlock: number,
  head: number,
): Promise<number> {
  let low = fromBlock;
  let high = head + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const block = await provider.getBlock(middle);
    if (block === null) throw new Error(`the node has no block ${middle} below its head ${head}`);
    if (BigInt(block.timestamp) < time) low = middle + 1;
    else high = middle;
  }
  return low;
}
