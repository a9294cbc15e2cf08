// Development entry: `npm run keeper -- --config keeper.json` runs the keeper (as `keeper run`); `npm run keeper --
// <init|check|run|status> ...` runs any CLI command. The production entry is the bundle: see keeper/src/cli/entry.ts.
import { main } from "./cli/main.js";
import { applyKeeperV8Flags } from "./node-flags.js";

const argv = process.argv.slice(2);
const COMMANDS = new Set(["init", "check", "run", "status", "help"]);
process.umask(0o077);
applyKeeperV8Flags();
process.exitCode = await main(argv.length > 0 && COMMANDS.has(argv[0]) ? argv : ["run", ...argv]);
// Handles such as an idle HTTP keep-alive socket must not hold the process open after the stop.
process.exit();
