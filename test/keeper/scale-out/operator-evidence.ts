// What the chain says several operator keys did: their chargeMany transactions, the items each carried, and which of
// those items were wasted (skipped by the contract as not due, or in a transaction that reverted).
import { billingInterface } from "../support/billing-setup.js";
import type { TestChain } from "../support/chain.js";

interface RawTransaction {
  hash: string;
  from: string;
  to: string | null;
  input: string;
}

interface RawReceipt {
  status: string;
  logs: { address: string; topics: string[]; data: string }[];
}

export interface OperatorWork {
  /** chargeMany transactions mined, per operator (lower-case address). */
  transactions: Map<string, number>;
  /** Subscriptions carried by mined chargeMany transactions, per operator. */
  itemsSent: Map<string, number>;
  /** Charged events in those transactions, per operator. */
  charged: Map<string, number>;
  /** Items the contract skipped (ChargeSkipped) or that were in a reverted transaction. */
  wasted: number;
  skipped: number;
  reverted: number;
}

const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n);

/** Scans blocks `fromBlock`..head for chargeMany transactions of `operators` to `billing`. */
export async function operatorWork(
  chain: TestChain,
  billing: string,
  operators: readonly string[],
  fromBlock: number,
): Promise<OperatorWork> {
  const keys = new Set(operators.map((address) => address.toLowerCase()));
  const work: OperatorWork = {
    transactions: new Map(),
    itemsSent: new Map(),
    charged: new Map(),
    wasted: 0,
    skipped: 0,
    reverted: 0,
  };
  const head = await chain.blockNumber();
  const skippedTopic = billingInterface.getEvent("ChargeSkipped")!.topicHash;
  const chargedTopic = billingInterface.getEvent("Charged")!.topicHash;
  for (let number = fromBlock; number <= head; number++) {
    const block = await chain.rpc<{ transactions: RawTransaction[] }>("eth_getBlockByNumber", [
      `0x${number.toString(16)}`,
      true,
    ]);
    for (const tx of block.transactions) {
      const from = tx.from.toLowerCase();
      if (!keys.has(from) || tx.to?.toLowerCase() !== billing.toLowerCase()) continue;
      const call = billingInterface.parseTransaction({ data: tx.input });
      if (call?.name !== "chargeMany")
        throw new Error(`operator ${from} sent ${call?.name ?? "unknown"} in ${tx.hash}`);
      const items = (call.args[0] as bigint[]).length;
      add(work.transactions, from, 1);
      add(work.itemsSent, from, items);
      const receipt = await chain.rpc<RawReceipt>("eth_getTransactionReceipt", [tx.hash]);
      if (receipt.status !== "0x1") {
        work.reverted += items;
        continue;
      }
      const ours = receipt.logs.filter((log) => log.address.toLowerCase() === billing.toLowerCase());
      const skipped = ours.filter((log) => log.topics[0] === skippedTopic).length;
      work.skipped += skipped;
      add(work.charged, from, ours.filter((log) => log.topics[0] === chargedTopic).length);
    }
  }
  work.wasted = work.skipped + work.reverted;
  return work;
}

export const total = (map: Map<string, number>) => [...map.values()].reduce((sum, n) => sum + n, 0);
