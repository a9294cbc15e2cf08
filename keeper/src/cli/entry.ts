// Entry of the bundled production CLI (dist/keeper.mjs, `keeper` bin): `node dist/keeper.mjs run --config <file>`.
import { main } from "./main.js";
import { applyKeeperV8Flags } from "../node-flags.js";

process.umask(0o077);
applyKeeperV8Flags();
process.exitCode = await main(process.argv.slice(2));
// Handles such as an idle HTTP keep-alive socket must not hold the process open after the stop.
process.exit();
