import { ethers } from "ethers";

import { filteredSubscriptions, type StoreStatus } from "../../../keeper/src/console/queries.js";
import { PostgresDb } from "../../../keeper/src/store/index.js";
import type { BillingContext } from "./context.js";
import { MerchantTaskError } from "./errors.js";
import type { StatusName, SubscriptionRow } from "./reads.js";

/**
 * One page of subscriptions from the keeper's PostgreSQL store (the keeper keeps every subscription's state from the
 * contract's events): no log scan and no call per subscription, so it stays fast with millions. The store must be
 * the one the keeper keeps for this chain and billing contract.
 */
export async function listSubscriptionsFromStore(
  context: BillingContext,
  url: string,
  filter: { merchantId?: bigint; customer?: string; status?: StatusName; limit: number; offset: number },
): Promise<{ total: number; rows: SubscriptionRow[] }> {
  let db: PostgresDb;
  try {
    db = await PostgresDb.open(url);
  } catch (error) {
    throw new MerchantTaskError(`--store: cannot open the keeper's store (${(error as Error).message})`);
  }
  try {
    const meta = Object.fromEntries(
      (await db.query<{ key: string; value: string }>("SELECT key, value FROM meta").catch(() => [])).map((row) => [
        row.key,
        row.value,
      ]),
    );
    if (meta.billingAddress !== context.billingAddress.toLowerCase() || meta.chainId !== String(context.chainId)) {
      throw new MerchantTaskError(
        `--store: that store is not a keeper's store for billing ${context.billingAddress} on chain ${context.chainId}`,
      );
    }
    const status = filter.status === undefined ? undefined : (filter.status.replace("-", "_") as StoreStatus);
    const page = await filteredSubscriptions(db, { ...filter, status });
    return {
      total: page.total,
      rows: page.rows.map((row) => ({
        ...row,
        customer: ethers.getAddress(row.customer),
        token: ethers.getAddress(row.token),
        status: row.status.replace("_", "-") as StatusName,
      })),
    };
  } finally {
    await db.close();
  }
}
