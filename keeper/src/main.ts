// CLI: `npm run keeper -- --config keeper.json`. Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 2 on a
// configuration error (the message names the field), 1 on any other fatal error.
import { parseArgs } from "node:util";

import { ConfigError, loadConfig } from "./config.js";
import { createLogger, Keeper } from "./keeper.js";
import { createSigner } from "./signer.js";
import { StoreMismatchError } from "./store/index.js";

const USAGE = `usage: npm run keeper -- --config <file.json>

Runs the Recurring Billing keeper. Every config field can also come from the environment (KEEPER_RPC_URL,
KEEPER_CHAIN_ID, KEEPER_BILLING_ADDRESS, KEEPER_POSTGRES_URL, ...): see keeper/README.md.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({ options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  let logger = createLogger(process.env.KEEPER_LOG_LEVEL ?? "info");
  let keeper: Keeper | undefined;
  try {
    const config = loadConfig(args.values.config);
    logger = createLogger(config.logLevel);
    const signer = await createSigner(config.signer);
    keeper = new Keeper({ config, signer, logger });
    const running = keeper;
    let stopping: Promise<void> | undefined;
    const stopped = new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        logger.info({ signal }, "stopping");
        stopping ??= running.stop().then(resolve, resolve);
      };
      process.once("SIGTERM", () => onSignal("SIGTERM"));
      process.once("SIGINT", () => onSignal("SIGINT"));
    });
    await running.start();
    await stopped;
    return 0;
  } catch (err) {
    await keeper?.stop().catch(() => {});
    if (err instanceof ConfigError || err instanceof StoreMismatchError) {
      logger.fatal({ issues: err instanceof ConfigError ? err.issues : [err.message] }, "configuration error");
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    logger.fatal({ error: (err as Error).message, stack: (err as Error).stack }, "fatal error");
    process.stderr.write(`keeper: fatal: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
// Handles such as an idle HTTP keep-alive socket must not hold the process open after the stop.
process.exit();
