import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress } from "../../safe/lib/addresses.js";
import { type CommonArgs, openBilling, runMerchantTask } from "../lib/context.js";
import { formatDuration, formatTime, parseChoice, parseInteger } from "../lib/parse.js";
import { STATUSES, listSubscriptions } from "../lib/reads.js";
import { listSubscriptionsFromStore } from "../lib/store.js";

/** Most rows one call returns; a page beyond needs `--offset`. */
export const MAX_LIMIT = 1_000;

interface Args extends CommonArgs {
  merchant: string;
  customer: string;
  status: string;
  limit: string;
  offset: string;
  fromBlock: string;
  store: string;
}

/** `subscriptions:list`: one page of subscriptions by merchant, customer and status, with the next due time. */
export default async function subscriptionsList(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const merchantId = args.merchant === "" ? undefined : parseInteger(args.merchant, "--merchant", 1n);
      const customer = args.customer === "" ? undefined : parseAddress(args.customer, "--customer");
      const status = args.status === "" ? undefined : parseChoice(args.status, STATUSES.slice(1), "--status");
      const limit = Number(parseInteger(args.limit, "--limit", 1n, BigInt(MAX_LIMIT)));
      const offset = Number(parseInteger(args.offset, "--offset", 0n, 2n ** 31n));
      const fromBlock =
        args.fromBlock === "" ? undefined : Number(parseInteger(args.fromBlock, "--from-block", 0n, 2n ** 53n));
      const context = await openBilling(hre, args.billing);
      const store = args.store !== "" ? args.store : process.env.KEEPER_POSTGRES_URL;
      const page =
        store !== undefined && store !== ""
          ? await listSubscriptionsFromStore(context, store, { merchantId, customer, status, limit, offset })
          : await listSubscriptions(context, { merchantId, customer, status, limit, offset, fromBlock });
      return { total: page.total, offset, limit, source: store ? "keeper store" : "chain", subscriptions: page.rows };
    },
    (page) => {
      if (page.subscriptions.length === 0) return console.log(`No subscriptions (of ${page.total} matching).`);
      for (const item of page.subscriptions) {
        const due =
          item.status === "active" || item.status === "past-due" ? `next due ${formatTime(item.nextChargeAt)}` : "";
        console.log(
          `subscription ${item.id}  merchant ${item.merchantId}  plan ${item.planId}  ${item.customer}  ${item.status}` +
            `  paid ${item.paidPeriods}${item.maxCharges > 0n ? `/${item.maxCharges}` : ""} x ${item.amount} every ${formatDuration(item.period)}  ${due}`.trimEnd(),
        );
      }
      const last = page.offset + page.subscriptions.length;
      console.log(
        `${page.offset + 1}-${last} of ${page.total}${last < page.total ? ` (next page: --offset ${last})` : ""}.`,
      );
    },
  );
}
