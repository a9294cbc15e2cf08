// Action of `npx hardhat keeper:run`: the keeper on the task's network connection, with the operator key from a
// Hardhat configuration variable (keystore or environment) when --key-var is given.
import { configVariable } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { ConfigError, loadConfig } from "./config.js";
import { Keeper } from "./keeper.js";
import { createSigner, type OperatorSigner, PrivateKeySigner } from "./signer.js";

async function signerFromVariable(hre: HardhatRuntimeEnvironment, name: string): Promise<OperatorSigner> {
  const value = await hre.hooks.runHandlerChain(
    "configurationVariables",
    "fetchValue",
    [configVariable(name)],
    async (_context, variable) => {
      const fromEnv = process.env[variable.name];
      if (fromEnv === undefined) {
        throw new ConfigError([
          `--key-var: configuration variable ${name} is not set: run "npx hardhat keystore set ${name}" or export ${name}`,
        ]);
      }
      return fromEnv;
    },
  );
  try {
    return new PrivateKeySigner(value.trim());
  } catch {
    throw new ConfigError([
      `--key-var: configuration variable ${name} does not hold a private key (32 bytes, 0x-prefixed hex)`,
    ]);
  }
}

export default async function keeperRun(
  args: { keeperConfig: string; keyVar: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  const env = { ...process.env };
  // The config's signer is optional here when the key comes from --key-var.
  if (args.keyVar !== "" && env.KEEPER_PRIVATE_KEY === undefined) env.KEEPER_PRIVATE_KEY = "unused";
  let keeper: Keeper;
  try {
    const config = loadConfig(args.keeperConfig, env);
    const signer = args.keyVar !== "" ? await signerFromVariable(hre, args.keyVar) : await createSigner(config.signer);
    const connection = await hre.network.getOrCreate();
    keeper = new Keeper({ config, signer, provider: connection.provider });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = () => void keeper.stop().then(resolve, resolve);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  try {
    await keeper.start();
  } catch (err) {
    await keeper.stop();
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  await stopped;
}
