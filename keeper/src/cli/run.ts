// `keeper run`: the keeper in the foreground until SIGTERM/SIGINT. Exit codes: 0 after a graceful stop, 2 on a
// configuration error or a store another keeper holds, 3 when the chain was reset under the store, 1 otherwise.
import { ChainResetError } from "../chain-identity.js";
import { ConfigError, loadConfig } from "../config.js";
import { createLogger, Keeper } from "../keeper.js";
import { createSigner } from "../signer.js";
import { StoreMismatchError } from "../store/index.js";
import { StoreLockedError } from "../store/lock.js";

/** A stop that takes longer than this (a hung RPC or store call) ends the process anyway. */
export const STOP_TIMEOUT_MS = 15_000;

export async function runKeeper(configFile: string | undefined): Promise<number> {
  // Store files and folders are the operator's alone (0600 / 0700), whatever umask the supervisor set.
  process.umask(0o077);
  let logger = createLogger(process.env.KEEPER_LOG_LEVEL ?? "info");
  let keeper: Keeper | undefined;
  let stopping: Promise<void> | undefined;
  try {
    const config = loadConfig(configFile);
    logger = createLogger(config.logLevel);
    const signer = await createSigner(config.signer);
    keeper = new Keeper({ config, signer, logger });
    const running = keeper;
    const stopped = new Promise<number>((resolve) => {
      const onSignal = (signal: string) => {
        if (stopping !== undefined) {
          logger.warn({ signal }, "second signal: exiting now");
          process.exit(1);
        }
        logger.info({ signal, timeoutMs: STOP_TIMEOUT_MS }, "stopping");
        setTimeout(() => {
          logger.error({ timeoutMs: STOP_TIMEOUT_MS }, "stop timed out: exiting");
          process.exit(1);
        }, STOP_TIMEOUT_MS).unref();
        stopping = running.stop().then(
          () => resolve(0),
          () => resolve(0),
        );
      };
      process.on("SIGTERM", () => onSignal("SIGTERM"));
      process.on("SIGINT", () => onSignal("SIGINT"));
      void running.halted.then(async (err) => {
        await running.stop().catch(() => {});
        process.stderr.write(`${err.message}\n`);
        resolve(err instanceof ChainResetError ? 3 : 1);
      });
    });
    await running.start();
    return await stopped;
  } catch (err) {
    if (stopping !== undefined) {
      // A signal arrived during the start: whatever the start tripped over while being stopped is not a failure.
      await stopping;
      return 0;
    }
    await keeper?.stop().catch(() => {});
    if (err instanceof ChainResetError) {
      logger.fatal({ error: err.message }, "chain reset");
      process.stderr.write(`${err.message}\n`);
      return 3;
    }
    if (err instanceof StoreLockedError) {
      logger.fatal({ error: err.message, holderPid: err.holderPid }, "store locked");
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
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
