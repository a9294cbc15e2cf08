import { ethers } from "ethers";

import type { StoredSubscription } from "../../../keeper/src/console/queries.js";
import type { BillingContext } from "./context.js";
import { blockAtOrAfter, creationBlock, getLogsBounded } from "./logs.js";

/** The contract's `Status` enum, by index. */
export const STATUSES = ["none", "active", "past-due", "cancelled", "lapsed", "completed"] as const;
export type StatusName = (typeof STATUSES)[number];

/** A plan as created, with whether it is open to new subscriptions now. */
export interface PlanRow {
  planId: bigint;
  merchantId: bigint;
  token: string;
  amount: bigint;
  period: bigint;
  trialPeriod: bigint;
  maxCharges: bigint;
  maxBacklog: bigint;
  active: boolean;
}

/**
 * A subscription's terms (from `Subscribed`) and its state now (from `getSubscription`): the keeper store's row shape,
 * with the status spelled as the tasks take it (`past-due`).
 */
export type SubscriptionRow = Omit<StoredSubscription, "status"> & { status: StatusName };

/** Revenue of one plan in one token over a time range. */
export interface RevenueRow {
  merchantId: bigint;
  planId: bigint;
  token: string;
  symbol: string;
  decimals: number;
  charges: number;
  amount: bigint;
}

/** Where log scans start: `--from-block`, else the billing contract's creation block. */
export async function scanStart(
  context: BillingContext,
  fromBlock: number | undefined,
): Promise<{ from: number; head: number }> {
  const head = await context.ethers.provider.getBlockNumber();
  const from = fromBlock ?? (await creationBlock(context.ethers.provider, context.billingAddress, head));
  return { from, head };
}

/** An indexed uint256 topic, or null (any). */
function topicId(value: bigint | undefined): string | null {
  return value === undefined ? null : ethers.toBeHex(value, 32);
}

/** An indexed address topic, or null (any). */
function topicAddress(value: string | undefined): string | null {
  return value === undefined ? null : ethers.zeroPadValue(value, 32);
}

/** Every plan (of `merchantId` when given), oldest first. */
export async function listPlans(
  context: BillingContext,
  options: { merchantId?: bigint; fromBlock?: number },
): Promise<PlanRow[]> {
  const { billing, ethers: hreEthers } = context;
  const { from, head } = await scanStart(context, options.fromBlock);
  const event = billing.interface.getEvent("PlanCreated");
  const logs = await getLogsBounded(hreEthers.provider, {
    address: context.billingAddress,
    topics: [event.topicHash, null, topicId(options.merchantId)],
    fromBlock: from,
    toBlock: head,
  });
  const rows: PlanRow[] = [];
  for (const log of logs) {
    const args = billing.interface.decodeEventLog(event, log.data, log.topics);
    const plan = await billing.getPlan(args.planId);
    rows.push({
      planId: args.planId,
      merchantId: args.merchantId,
      token: ethers.getAddress(args.token),
      amount: args.amount,
      period: args.period,
      trialPeriod: args.trialPeriod,
      maxCharges: args.maxCharges,
      maxBacklog: args.maxBacklog,
      active: plan.active,
    });
  }
  return rows;
}

/** Terms of every subscription matching the filter, from `Subscribed`, by id. */
async function subscribedTerms(
  context: BillingContext,
  filter: { merchantId?: bigint; customer?: string; subscriptionId?: bigint; from: number; to: number },
) {
  const { billing } = context;
  const event = billing.interface.getEvent("Subscribed");
  const logs = await getLogsBounded(context.ethers.provider, {
    address: context.billingAddress,
    topics: [
      event.topicHash,
      topicId(filter.subscriptionId),
      topicId(filter.merchantId),
      topicAddress(filter.customer),
    ],
    fromBlock: filter.from,
    toBlock: filter.to,
  });
  return logs
    .map((log) => billing.interface.decodeEventLog(event, log.data, log.topics))
    .map((args) => ({
      id: args.subscriptionId as bigint,
      merchantId: args.merchantId as bigint,
      customer: ethers.getAddress(args.customer as string),
      planId: args.planId as bigint,
      token: ethers.getAddress(args.token as string),
      amount: args.amount as bigint,
      period: args.period as bigint,
      maxCharges: args.maxCharges as bigint,
      maxBacklog: args.maxBacklog as bigint,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The ref that addresses a subscription on chain. */
export function refOf(terms: { id: bigint; customer: string; amount: bigint; token: string }) {
  return { id: terms.id, customer: terms.customer, amount: terms.amount, token: terms.token };
}

/** One subscription's terms and state, or undefined when no `Subscribed` event has that id. */
export async function findSubscription(
  context: BillingContext,
  id: bigint,
  fromBlock?: number,
): Promise<SubscriptionRow | undefined> {
  const { from, head } = await scanStart(context, fromBlock);
  const [terms] = await subscribedTerms(context, { subscriptionId: id, from, to: head });
  return terms === undefined ? undefined : withState(context, terms);
}

async function withState(
  context: BillingContext,
  terms: Omit<SubscriptionRow, "status" | "nextChargeAt" | "paidPeriods">,
): Promise<SubscriptionRow> {
  const state = await context.billing.getSubscription(refOf(terms));
  return {
    ...terms,
    status: STATUSES[Number(state.status)] ?? "none",
    nextChargeAt: state.nextChargeAt,
    paidPeriods: state.chargeCount,
  };
}

/**
 * One page of the subscriptions matching the filter, by id, with their state now. States are read a page at a time,
 * so the work per call is bounded by `limit` unless a status filter must look further.
 */
export async function listSubscriptions(
  context: BillingContext,
  options: {
    merchantId?: bigint;
    customer?: string;
    status?: StatusName;
    limit: number;
    offset: number;
    fromBlock?: number;
  },
): Promise<{ total: number; rows: SubscriptionRow[] }> {
  const { from, head } = await scanStart(context, options.fromBlock);
  const terms = await subscribedTerms(context, {
    merchantId: options.merchantId,
    customer: options.customer,
    from,
    to: head,
  });
  if (options.status === undefined) {
    const page = terms.slice(options.offset, options.offset + options.limit);
    return { total: terms.length, rows: await Promise.all(page.map((item) => withState(context, item))) };
  }
  const matching: SubscriptionRow[] = [];
  for (let index = 0; index < terms.length; index += 50) {
    const states = await Promise.all(terms.slice(index, index + 50).map((item) => withState(context, item)));
    matching.push(...states.filter((row) => row.status === options.status));
  }
  return { total: matching.length, rows: matching.slice(options.offset, options.offset + options.limit) };
}

/** A token's symbol and decimals; `?` and 0 (base units) when the token does not say. */
export async function tokenInfo(context: BillingContext, token: string): Promise<{ symbol: string; decimals: number }> {
  const erc20 = new ethers.Contract(
    token,
    ["function symbol() view returns (string)", "function decimals() view returns (uint8)"],
    context.ethers.provider,
  );
  const [symbol, decimals] = await Promise.all([
    (erc20.symbol() as Promise<string>).catch(() => "?"),
    (erc20.decimals() as Promise<bigint>).then(Number).catch(() => 0),
  ]);
  return { symbol, decimals };
}

/**
 * Revenue per merchant, plan and token from the `Charged` events of blocks stamped in [fromTime, toTime).
 */
export async function revenue(
  context: BillingContext,
  options: { merchantId?: bigint; fromTime: bigint; toTime: bigint; fromBlock?: number },
): Promise<{ fromBlock: number; toBlock: number; rows: RevenueRow[] }> {
  const { billing } = context;
  const provider = context.ethers.provider;
  const { from, head } = await scanStart(context, options.fromBlock);
  const firstBlock = await blockAtOrAfter(provider, options.fromTime, from, head);
  const lastBlock = (await blockAtOrAfter(provider, options.toTime, firstBlock, head)) - 1;
  const event = billing.interface.getEvent("Charged");
  const charged =
    firstBlock > lastBlock
      ? []
      : await getLogsBounded(provider, {
          address: context.billingAddress,
          topics: [event.topicHash, null, topicId(options.merchantId)],
          fromBlock: firstBlock,
          toBlock: lastBlock,
        });
  const terms = new Map(
    (await subscribedTerms(context, { merchantId: options.merchantId, from, to: Math.max(lastBlock, from) })).map(
      (item) => [item.id, item],
    ),
  );
  const rows = new Map<string, RevenueRow>();
  const tokens = new Map<string, { symbol: string; decimals: number }>();
  for (const log of charged) {
    const args = billing.interface.decodeEventLog(event, log.data, log.topics);
    const subscription = terms.get(args.subscriptionId as bigint);
    if (subscription === undefined) throw new Error(`Charged for unknown subscription ${args.subscriptionId}`);
    const key = `${subscription.merchantId}/${subscription.planId}/${subscription.token}`;
    let row = rows.get(key);
    if (row === undefined) {
      let info = tokens.get(subscription.token);
      if (info === undefined) {
        info = await tokenInfo(context, subscription.token);
        tokens.set(subscription.token, info);
      }
      row = {
        merchantId: subscription.merchantId,
        planId: subscription.planId,
        token: subscription.token,
        ...info,
        charges: 0,
        amount: 0n,
      };
      rows.set(key, row);
    }
    row.charges += 1;
    row.amount += args.amount as bigint;
  }
  const sorted = [...rows.values()].sort((a, b) =>
    a.merchantId !== b.merchantId
      ? a.merchantId < b.merchantId
        ? -1
        : 1
      : a.planId < b.planId
        ? -1
        : a.planId > b.planId
          ? 1
          : 0,
  );
  return { fromBlock: firstBlock, toBlock: lastBlock, rows: sorted };
}
