// The `keeper` command: init | check | run | status. Exit codes: 0 ok, 1 a check or the keeper failed, 2 bad usage
// or configuration (one line per problem), 3 the chain was reset under the store (see `keeper run`).
import { parseArgs } from "node:util";

import { ConfigError } from "../config.js";
import { runCheck } from "./check.js";
import { runInit } from "./init.js";
import { runKeeper } from "./run.js";
import { runStatus } from "./status.js";

export const USAGE = `usage: keeper <command> [options]

  keeper init   [--dir <dir>] [--dev] [--rpc-url <url>] [--chain-id <id>] [--billing-address <0x..>] [--force]
                writes <dir>/keeper.json (commented) and a new encrypted keystore <dir>/operator.keystore.json;
                the password comes from KEEPER_KEYSTORE_PASSWORD or a prompt. Prints the address to register AND fund.
  keeper check  --config <file> [--batches <n>]   one line per check; exit 0 all ok, 1 a check failed, 2 bad config
  keeper run    --config <file>                   runs the keeper until SIGTERM/SIGINT
  keeper status --config <file>                   sync head and lag, pending transactions, last charges

Every config field can also come from the environment (KEEPER_RPC_URL, KEEPER_CHAIN_ID, KEEPER_BILLING_ADDRESS,
KEEPER_POSTGRES_URL, ...): see keeper/README.md. Under a supervisor run it as: node dist/keeper.mjs run --config <file>`;

const COMMANDS = ["init", "check", "run", "status"] as const;

/** Runs the command in `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    (command === undefined ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    process.stderr.write(`keeper: unknown command "${command}" (expected ${COMMANDS.join(", ")}; see keeper --help)\n`);
    return 2;
  }
  let args;
  try {
    args = parseArgs({
      args: rest,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        batches: { type: "string" },
        dir: { type: "string" },
        dev: { type: "boolean" },
        force: { type: "boolean" },
        "rpc-url": { type: "string" },
        "chain-id": { type: "string" },
        "billing-address": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    process.stderr.write(`keeper ${command}: ${(err as Error).message} (see keeper --help)\n`);
    return 2;
  }
  const values = args.values;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    switch (command) {
      case "init":
        return await runInit({
          dir: values.dir ?? ".",
          dev: values.dev ?? false,
          force: values.force ?? false,
          rpcUrl: values["rpc-url"],
          chainId: values["chain-id"],
          billingAddress: values["billing-address"],
        });
      case "check":
        return await runCheck(values.config, values.batches);
      case "status":
        return await runStatus(values.config);
      default:
        return await runKeeper(values.config);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keeper ${command}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
