// The operator key behind a narrow interface: the keeper only ever asks for an address and a signature, so a KMS or
// Vault signer can implement it without the key ever entering this process. Errors never carry key material.
import { readFileSync } from "node:fs";

import { Transaction, type TransactionLike, Wallet } from "ethers";

import type { SignerConfig } from "./config.js";
import { ConfigError } from "./config.js";

/** Signs the operator's transactions. */
export interface OperatorSigner {
  /** Checksummed address of the operator. */
  readonly address: string;
  /** Returns the serialized signed transaction (0x-prefixed). */
  signTransaction(tx: TransactionLike<string>): Promise<string>;
}

/** A signer over a private key held in memory (keystore-decrypted or from the environment). */
export class PrivateKeySigner implements OperatorSigner {
  readonly #wallet: Wallet;

  constructor(privateKey: string) {
    try {
      this.#wallet = new Wallet(privateKey);
    } catch {
      // The ethers message echoes the value: never let it out.
      throw new Error("invalid private key: expected 32 bytes as 0x-prefixed hex");
    }
  }

  get address(): string {
    return this.#wallet.address;
  }

  async signTransaction(tx: TransactionLike<string>): Promise<string> {
    return this.#wallet.signTransaction(Transaction.from(tx));
  }

  /** Hides the key from `console.log`, pino and JSON.stringify. */
  toJSON(): { address: string } {
    return { address: this.address };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `PrivateKeySigner(${this.address})`;
  }
}

function readPassword(
  config: Extract<SignerConfig, { type: "keystore" }>,
  env: Record<string, string | undefined>,
): string {
  if (config.passwordEnv !== undefined) {
    const value = env[config.passwordEnv];
    if (value === undefined) {
      throw new ConfigError([
        `signer.passwordEnv: environment variable ${config.passwordEnv} is not set (it must hold the keystore password)`,
      ]);
    }
    return value;
  }
  try {
    // A trailing newline is an artifact of `echo pw > file`, not part of the password.
    return readFileSync(config.passwordFile as string, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new ConfigError([
      `signer.passwordFile: cannot read ${config.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
    ]);
  }
}

/** Builds the operator signer the configuration describes. */
export async function createSigner(
  config: SignerConfig,
  env: Record<string, string | undefined> = process.env,
): Promise<OperatorSigner> {
  if (config.type === "env") {
    const key = env[config.variable];
    if (key === undefined || key === "") {
      throw new ConfigError([
        `signer.variable: environment variable ${config.variable} is not set (it must hold the operator private key)`,
      ]);
    }
    try {
      return new PrivateKeySigner(key.trim());
    } catch {
      throw new ConfigError([
        `signer.variable: ${config.variable} does not hold a valid private key (expected 32 bytes as 0x-prefixed hex)`,
      ]);
    }
  }
  let json: string;
  try {
    json = readFileSync(config.path, "utf8");
  } catch (err) {
    throw new ConfigError([
      `signer.path: cannot read keystore ${config.path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
    ]);
  }
  const password = readPassword(config, env);
  let wallet;
  try {
    wallet = await Wallet.fromEncryptedJson(json, password);
  } catch (err) {
    const reason = /password/i.test((err as Error).message) ? "wrong password" : "not a valid encrypted JSON keystore";
    throw new ConfigError([`signer.path: cannot decrypt keystore ${config.path}: ${reason}`]);
  }
  return new PrivateKeySigner(wallet.privateKey);
}
