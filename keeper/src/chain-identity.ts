// A development node restarted with the same chain id and the same contract addresses is a different chain: the
// store's events, cursor and transactions belong to the old one. The store records the chain's genesis hash on
// first use; a different genesis stops the keeper with one line that says how
// to start over, instead of looping on "nonce too high" and rolling back a "reorg" that never happened.
import type { RpcClient } from "./rpc.js";
import type { Db } from "./store/index.js";

/** The chain behind the RPC is not the one the store was built from. The process exits with code 3 on it. */
export class ChainResetError extends Error {
  constructor(detail: string, dataHint: string) {
    super(
      `chain reset: ${detail}; this store belongs to the old chain. To start over: stop the keeper, ${dataHint}, redeploy or re-point billingAddress, and start it again`,
    );
    this.name = "ChainResetError";
  }
}

const GENESIS_KEY = "genesisHash";

/** What to do with the store, for the error line. */
export function startOverHint(store: { dataDir: string } | { postgresUrl: string } | undefined): string {
  if (store && "dataDir" in store) return `move away or delete the store directory ${store.dataDir}`;
  if (store && "postgresUrl" in store) return "point store.postgresUrl at a new database (or drop this one)";
  return "use a new store";
}

/** Re-reads of a genesis hash that disagrees with the store, and their spacing: one bad answer proves nothing. */
const CONFIRM_READS = 3;
const CONFIRM_PAUSE_MS = 700;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Records the genesis hash on first use (once two reads agree), then checks it: throws {@link ChainResetError} when
 * the node serves another chain than the store's. A genesis that differs is read again {@link CONFIRM_READS} times
 * over about two seconds and must differ every time: a load-balanced provider's single wrong header (a node behind
 * the balancer, a crossed answer) must not stop the keeper. (A head below the synced block proves nothing either: a
 * lagging endpoint shows it.)
 */
export async function checkChainIdentity(
  db: Db,
  rpc: Pick<RpcClient, "getBlock">,
  dataHint: string,
  pauseMs = CONFIRM_PAUSE_MS,
): Promise<void> {
  const read = async () => (await rpc.getBlock(0)).hash.toLowerCase();
  const genesis = await read();
  const rows = await db.query<{ value: string }>("SELECT value FROM meta WHERE key = $1", [GENESIS_KEY]);
  if (rows.length === 0) {
    // Recorded only when a second read agrees; otherwise the next check records it.
    if ((await read()) !== genesis) return;
    await db.query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [
      GENESIS_KEY,
      genesis,
    ]);
    return;
  }
  const stored = rows[0].value;
  if (genesis === stored) return;
  for (let i = 0; i < CONFIRM_READS; i++) {
    await sleep(pauseMs);
    if ((await read()) === stored) return;
  }
  throw new ChainResetError(
    `the node's genesis block is ${genesis}, the store was built on a chain whose genesis is ${stored}`,
    dataHint,
  );
}

/**
 * Whether the node mines only when a transaction arrives (Hardhat/anvil automine with no interval): then a keeper
 * that waits for confirmations waits for blocks nobody mines. Undefined when the node does not say.
 */
export async function isAutomining(rpc: RpcClient): Promise<boolean | undefined> {
  for (const method of ["hardhat_getAutomine", "anvil_getAutomine"]) {
    try {
      const value = await rpc.request(method, []);
      if (typeof value === "boolean") return value;
    } catch {
      // Not this kind of node.
    }
  }
  return undefined;
}
