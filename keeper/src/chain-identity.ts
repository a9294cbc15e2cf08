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

/**
 * Records the genesis hash on first use, then checks it: throws {@link ChainResetError} when the node serves another
 * chain than the store's. (A head below the synced block proves nothing: a lagging load-balanced endpoint shows it.)
 */
export async function checkChainIdentity(db: Db, rpc: RpcClient, dataHint: string): Promise<void> {
  const genesis = (await rpc.getBlock(0)).hash.toLowerCase();
  const rows = await db.query<{ value: string }>("SELECT value FROM meta WHERE key = $1", [GENESIS_KEY]);
  if (rows.length === 0) {
    await db.query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [
      GENESIS_KEY,
      genesis,
    ]);
  } else if (rows[0].value !== genesis) {
    throw new ChainResetError(
      `the node's genesis block is ${genesis}, the store was built on a chain whose genesis is ${rows[0].value}`,
      dataHint,
    );
  }
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
