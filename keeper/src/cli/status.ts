// `keeper status`: the store's view (sync head and lag, pending transactions with ages, last charges). A running
// keeper holds its embedded store, so then the report comes from its /status endpoint instead.
import { existsSync } from "node:fs";

import { loadConfig } from "../config.js";
import { RpcClient } from "../rpc.js";
import { openDb } from "../store/index.js";
import { lockStore, StoreLockedError } from "../store/lock.js";
import { formatStatus, type StatusReport, statusReport } from "./status-report.js";

async function fromRunningKeeper(host: string, port: number): Promise<StatusReport> {
  if (port === 0)
    throw new Error("the running keeper's metrics port is 0 (random): set metrics.port to read its status");
  const response = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${port}/status`, {
    signal: AbortSignal.timeout(5000),
  });
  if (!response.ok) throw new Error(`GET /status: HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as StatusReport;
}

export async function runStatus(configFile: string | undefined): Promise<number> {
  if (configFile === undefined) {
    process.stderr.write("keeper status: --config <file> is required\n");
    return 2;
  }
  const config = loadConfig(configFile);
  if ("dataDir" in config.store && !existsSync(config.store.dataDir)) {
    process.stderr.write(`keeper status: no store at ${config.store.dataDir} yet (the keeper has not run with it)\n`);
    return 1;
  }
  const rpc = new RpcClient(config.rpcUrl, { timeoutMs: 5000, retries: 0 });
  const head = await rpc.blockNumber().catch(() => undefined);
  let lock;
  try {
    lock = await lockStore(config.store, `${config.instanceId}:status`);
  } catch (err) {
    if (!(err instanceof StoreLockedError)) throw err;
    try {
      const report = await fromRunningKeeper(config.metrics.host, config.metrics.port);
      for (const line of formatStatus(report, `running keeper (pid ${err.holderPid ?? "?"})`))
        process.stdout.write(`${line}\n`);
      return 0;
    } catch (fetchError) {
      process.stderr.write(
        `keeper status: the store is in use (pid ${err.holderPid ?? "?"}) and its /status did not answer: ${(fetchError as Error).message}\n`,
      );
      return 1;
    }
  }
  try {
    const db = await openDb(config.store);
    try {
      const source = "dataDir" in config.store ? config.store.dataDir : "PostgreSQL";
      for (const line of formatStatus(await statusReport(db, head), source)) process.stdout.write(`${line}\n`);
    } finally {
      await db.close();
    }
  } finally {
    await lock.release();
  }
  return 0;
}
