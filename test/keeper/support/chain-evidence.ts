// What the chain says happened, for assertions: decoded Charged events and the operator's mined transactions.
// Tests judge the keeper by this evidence, never by the keeper's own account of what it did.
import type { TestChain } from "./chain.js";
import { billingInterface } from "./billing-setup.js";
import type { ForwardedTransaction } from "./fault-proxy.js";

export interface Charge {
  subscriptionId: bigint;
  /** The period paid (0 = the first), from the event's next due time and the subscription's schedule. */
  periodIndex: bigint;
  blockNumber: number;
  transactionHash: string;
}

interface RawLog {
  topics: string[];
  data: string;
  blockNumber: string;
  transactionHash: string;
}

interface Schedule {
  firstChargeAt: bigint;
  period: bigint;
}

/** Schedules by chain URL and billing address: a subscription's first due time and period never change. */
const scheduleCache = new Map<string, Map<bigint, Schedule>>();

/** The schedules of (at least) `ids`, from the Subscribed events, read again only when one is missing. */
async function schedulesOf(chain: TestChain, billing: string, ids: readonly bigint[]): Promise<Map<bigint, Schedule>> {
  const key = `${chain.url}|${billing.toLowerCase()}`;
  let schedules = scheduleCache.get(key);
  if (schedules !== undefined && ids.every((id) => schedules!.has(id))) return schedules;
  schedules = new Map();
  const logs = await chain.rpc<RawLog[]>("eth_getLogs", [
    {
      address: billing,
      topics: [billingInterface.getEvent("Subscribed")!.topicHash],
      fromBlock: "0x0",
      toBlock: "latest",
    },
  ]);
  for (const log of logs) {
    const parsed = billingInterface.parseLog(log)!;
    schedules.set(parsed.args.subscriptionId as bigint, {
      firstChargeAt: parsed.args.firstChargeAt as bigint,
      period: parsed.args.period as bigint,
    });
  }
  scheduleCache.set(key, schedules);
  return schedules;
}

/**
 * Every Charged event of `billing` from `fromBlock` to the head, decoded with the contract ABI. A v2 Charged event
 * carries the next due time: the period it paid is `(nextChargeAt - firstChargeAt) / period - 1`, with the schedule
 * from the subscription's Subscribed event.
 */
export async function chargedEvents(chain: TestChain, billing: string, fromBlock = 0): Promise<Charge[]> {
  const logs = await chain.rpc<RawLog[]>("eth_getLogs", [
    {
      address: billing,
      topics: [billingInterface.getEvent("Charged")!.topicHash],
      fromBlock: `0x${fromBlock.toString(16)}`,
      toBlock: "latest",
    },
  ]);
  const parsed = logs.map((log) => ({ log, event: billingInterface.parseLog(log)! }));
  const schedules = await schedulesOf(
    chain,
    billing,
    parsed.map(({ event }) => event.args.subscriptionId as bigint),
  );
  return parsed.map(({ log, event }) => {
    const subscriptionId = event.args.subscriptionId as bigint;
    const schedule = schedules.get(subscriptionId);
    if (schedule === undefined) throw new Error(`Charged for subscription ${subscriptionId}, which has no Subscribed`);
    return {
      subscriptionId,
      periodIndex: ((event.args.nextChargeAt as bigint) - schedule.firstChargeAt) / schedule.period - 1n,
      blockNumber: Number(log.blockNumber),
      transactionHash: log.transactionHash,
    };
  });
}

/**
 * Problems with the charges of `subscriptionIds`: each must have paid exactly periods 0..periods-1, once each.
 * Returns human-readable findings (empty when all is well) so a failure lists every offender at once.
 */
export function chargeProblems(
  charges: readonly Charge[],
  subscriptionIds: readonly bigint[],
  periods: number,
): string[] {
  const seen = new Map<string, number>();
  for (const charge of charges) {
    const key = `${charge.subscriptionId}:${charge.periodIndex}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const problems: string[] = [];
  for (const id of subscriptionIds) {
    for (let period = 0; period < periods; period++) {
      const count = seen.get(`${id}:${period}`) ?? 0;
      if (count !== 1) problems.push(`subscription ${id} period ${period} charged ${count} times`);
    }
    if (seen.has(`${id}:${periods}`)) problems.push(`subscription ${id} charged for period ${periods}, not yet due`);
  }
  return problems;
}

interface RawBlock {
  transactions: { hash: string; from: string; nonce: string }[];
}

/** Transactions `from` mined in blocks `fromBlock`..head, in order. */
export async function minedTransactionsFrom(chain: TestChain, from: string, fromBlock = 0) {
  const head = await chain.blockNumber();
  const mined: { hash: string; nonce: number; blockNumber: number }[] = [];
  for (let number = fromBlock; number <= head; number++) {
    const block = await chain.rpc<RawBlock>("eth_getBlockByNumber", [`0x${number.toString(16)}`, true]);
    for (const tx of block.transactions) {
      if (tx.from.toLowerCase() === from.toLowerCase()) {
        mined.push({ hash: tx.hash, nonce: Number(tx.nonce), blockNumber: number });
      }
    }
  }
  return mined;
}

/**
 * Problems with the operator's nonce stream: every nonce below the final one mined exactly once, nothing of the
 * operator left in the mempool, and every nonce the proxy saw it sign consumed on chain (nothing signed was lost).
 */
export async function nonceProblems(
  chain: TestChain,
  operator: string,
  signed: readonly ForwardedTransaction[],
  startNonce = 0,
): Promise<string[]> {
  const problems: string[] = [];
  const mined = await minedTransactionsFrom(chain, operator);
  const finalNonce = await chain.nonce(operator, "latest");
  const pendingNonce = await chain.nonce(operator, "pending");
  if (pendingNonce !== finalNonce)
    problems.push(`${pendingNonce - finalNonce} operator transactions stuck in the mempool`);
  const byNonce = new Map<number, number>();
  for (const tx of mined) byNonce.set(tx.nonce, (byNonce.get(tx.nonce) ?? 0) + 1);
  for (let nonce = startNonce; nonce < finalNonce; nonce++) {
    if (byNonce.get(nonce) !== 1) problems.push(`nonce ${nonce} mined ${byNonce.get(nonce) ?? 0} times`);
  }
  for (const tx of signed) {
    if (tx.from.toLowerCase() === operator.toLowerCase() && tx.nonce >= finalNonce) {
      problems.push(`signed transaction ${tx.hash} (nonce ${tx.nonce}) never mined, final nonce ${finalNonce}`);
    }
  }
  return problems;
}
