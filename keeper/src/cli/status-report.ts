// What `keeper status` prints, read from the store: sync cursor and lag, transactions not yet final with their ages,
// and the last charges. The running keeper serves the same report at /status (its embedded store cannot be opened by
// a second process while it runs).
import { type Db, toNumber } from "../store/index.js";

export interface StatusReport {
  syncedBlock: number | null;
  headBlock: number | null;
  lagBlocks: number | null;
  pending: { sender: string; nonce: number; state: string; items: number; ageSeconds: number; hash: string | null }[];
  lastCharges: { subscriptionId: string; block: number; txHash: string; amount: string | null }[];
}

/** Builds the report; `head` is the chain head when known (the lag needs it). */
export async function statusReport(db: Db, head?: number, now = Date.now()): Promise<StatusReport> {
  const cursor = await db.query<{ block_number: unknown }>("SELECT block_number FROM sync_cursor WHERE id = 1");
  const syncedBlock = cursor.length > 0 ? toNumber(cursor[0].block_number) : null;
  const pending = await db.query<{
    sender: string;
    nonce: unknown;
    state: string;
    subscription_ids: unknown[];
    created_at_ms: unknown;
    hash: string | null;
  }>(
    `SELECT t.sender, t.nonce, t.state, t.subscription_ids, t.created_at_ms,
       (SELECT a.hash FROM tx_attempts a WHERE a.sender = t.sender AND a.nonce = t.nonce
        ORDER BY a.created_at_ms DESC LIMIT 1) AS hash
     FROM txs t WHERE t.state IN ('pending', 'mined') ORDER BY t.sender, t.nonce`,
  );
  const charges = await db.query<{ subscription_id: unknown; block_number: unknown; tx_hash: string; args: unknown }>(
    "SELECT subscription_id, block_number, tx_hash, args FROM events WHERE name = 'Charged' ORDER BY block_number DESC, log_index DESC LIMIT 10",
  );
  return {
    syncedBlock,
    headBlock: head ?? null,
    lagBlocks: head !== undefined && syncedBlock !== null ? Math.max(0, head - syncedBlock) : null,
    pending: pending.map((row) => ({
      sender: row.sender,
      nonce: toNumber(row.nonce),
      state: row.state,
      items: row.subscription_ids.length,
      ageSeconds: Math.max(0, Math.round((now - toNumber(row.created_at_ms)) / 1000)),
      hash: row.hash,
    })),
    lastCharges: charges.map((row) => {
      const args = (typeof row.args === "string" ? JSON.parse(row.args) : row.args) as Record<string, unknown>;
      return {
        subscriptionId: String(row.subscription_id),
        block: toNumber(row.block_number),
        txHash: row.tx_hash,
        amount: args.amount === undefined ? null : String(args.amount),
      };
    }),
  };
}

/** The report as lines for a terminal. */
export function formatStatus(report: StatusReport, source: string): string[] {
  const lines = [
    `store: ${source}`,
    `sync: block ${report.syncedBlock ?? "none yet"}` +
      (report.headBlock === null ? " (head unknown)" : `, head ${report.headBlock}, lag ${report.lagBlocks} blocks`),
    `pending transactions: ${report.pending.length}`,
  ];
  for (const tx of report.pending) {
    lines.push(
      `  nonce ${tx.nonce} ${tx.state} ${tx.items} items, ${tx.ageSeconds} s old, ${tx.hash ?? "?"} (${tx.sender})`,
    );
  }
  lines.push(`last charges: ${report.lastCharges.length}`);
  for (const charge of report.lastCharges) {
    lines.push(
      `  subscription ${charge.subscriptionId} block ${charge.block} amount ${charge.amount ?? "?"} tx ${charge.txHash}`,
    );
  }
  return lines;
}
