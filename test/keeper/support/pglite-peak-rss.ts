// Child process of test/keeper/unit/node-flags.ts: opens an existing embedded store as the keeper does (with the
// keeper's V8 flags when argv[3] is "keeper", V8's defaults otherwise), runs a fixed workload of inserts and due-style
// reads, and prints the process's peak RSS in KiB.
import { readFileSync } from "node:fs";

import { applyKeeperV8Flags } from "../../../keeper/src/node-flags.js";
import { PgliteDb } from "../../../keeper/src/store/index.js";

const [dataDir, flags] = process.argv.slice(2);
if (flags === "keeper") applyKeeperV8Flags();
const db = await PgliteDb.open(dataDir);
await db.query("CREATE TABLE IF NOT EXISTS work (id bigint PRIMARY KEY, due bigint NOT NULL, args jsonb NOT NULL)");
await db.query("CREATE INDEX IF NOT EXISTS work_due ON work (due)");
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
