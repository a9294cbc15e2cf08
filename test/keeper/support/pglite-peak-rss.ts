// Child process of test/keeper/unit/node-flags.ts: opens an existing embedded store as the keeper does (with the
// keeper's V8 flags when argv[3] is "keeper", V8's defaults otherwise), runs a fixed workload of inserts and due-style
// reads, and prints the process's peak RSS in KiB. Does nothing when imported (mocha loads every file under test/).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import { applyKeeperV8Flags } from "../../../keeper/src/node-flags.js";
import { PgliteDb } from "../../../keeper/src/store/index.js";

async function main(dataDir: string, flags: string | undefined): Promise<void> {
  if (flags === "keeper") applyKeeperV8Flags();
  const db = await PgliteDb.open(dataDir);
  await db.query("CREATE TABLE work (id bigint PRIMARY KEY, due bigint NOT NULL, args jsonb NOT NULL)");
  await db.query("CREATE INDEX work_due ON work (due)");
  for (let batch = 0; batch < 40; batch++) {
    const ids = Array.from({ length: 1000 }, (_, i) => String(batch * 1000 + i));
    await db.query(
      `INSERT INTO work SELECT id, id % 977, jsonb_build_object('subscriptionId', id::text)
       FROM unnest($1::text[]::bigint[]) AS id`,
      [ids],
    );
    await db.query("SELECT id FROM work WHERE due <= $1 ORDER BY due, id LIMIT 1290", [batch * 20]);
  }
  await db.close();
  console.log(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dataDir, flags] = process.argv.slice(2);
  if (dataDir === undefined) throw new Error("usage: pglite-peak-rss.ts <existing PGlite data dir> [keeper|default]");
  await main(dataDir, flags);
}
