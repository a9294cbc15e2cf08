// `keeper init`: a new operator key in an encrypted keystore and a commented config that uses it. Prints the address
// that must be registered in the OperatorRegistry AND funded with ETH for gas before the keeper can charge anything.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";

import { Wallet } from "ethers";

import { ConfigError, parseConfig } from "../config.js";

/** The variable holding the keystore password, for `init` and in the config it writes. */
export const PASSWORD_ENV = "KEEPER_KEYSTORE_PASSWORD";
export const CONFIG_FILE = "keeper.json";
export const KEYSTORE_FILE = "operator.keystore.json";
const PLACEHOLDER_BILLING = "0x0000000000000000000000000000000000000000";

export interface InitOptions {
  dir: string;
  dev: boolean;
  force: boolean;
  rpcUrl?: string;
  chainId?: string;
  billingAddress?: string;
}

/** Reads a line without echoing it (a terminal only). */
async function prompt(question: string): Promise<string> {
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question("", resolve));
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}

async function password(): Promise<string> {
  const fromEnv = process.env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (!process.stdin.isTTY) {
    throw new ConfigError([`${PASSWORD_ENV} is not set and stdin is not a terminal: set it to the keystore password`]);
  }
  const first = await prompt("keystore password: ");
  const second = await prompt("again: ");
  if (first !== second) throw new ConfigError(["the two passwords differ"]);
  if (first.length < 8) throw new ConfigError(["the password must have at least 8 characters"]);
  return first;
}

/** The commented config (JSON with comments; `loadConfig` accepts them). */
export function configText(values: { rpcUrl: string; chainId: number; billingAddress: string; dev: boolean }): string {
  const billingComment =
    values.billingAddress === PLACEHOLDER_BILLING
      ? "  // TODO: the RecurringBilling address (deploy/deployments/<id>/deployed_addresses.json)."
      : "  // The RecurringBilling contract this keeper charges for.";
  const confirmations = values.dev
    ? [
        "  // Development node that automines (a block per transaction): wait for no extra blocks, or charges stall",
        "  // until something else is mined.",
        '  "confirmations": 0,',
        '  "txConfirmations": 1,',
        '  "pollIntervalMs": 500,',
      ]
    : [
        "  // Blocks to stay behind the head (reorg safety) and blocks a charge needs before it counts as final.",
        '  "confirmations": 2,',
        '  "txConfirmations": 2,',
      ];
  return [
    "// Recurring Billing keeper configuration (JSON with comments). Reference: keeper/README.md.",
    "// Every field can be overridden by a KEEPER_* environment variable (KEEPER_RPC_URL, KEEPER_POSTGRES_URL, ...).",
    "{",
    "  // JSON-RPC endpoint of a node of the chain below.",
    `  "rpcUrl": ${JSON.stringify(values.rpcUrl)},`,
    `  "chainId": ${values.chainId},`,
    billingComment,
    `  "billingAddress": ${JSON.stringify(values.billingAddress)},`,
    "  // Block the contract was deployed in: the sync starts there.",
    '  "startBlock": 0,',
    ...confirmations,
    "  // Embedded store (one keeper per directory; locked while it runs). For PostgreSQL:",
    '  // "store": { "postgresUrl": "postgres://user@host:5432/keeper" },',
    '  "store": { "dataDir": "data" },',
    `  // The operator key, encrypted; the password comes from the ${PASSWORD_ENV} environment variable`,
    '  // (or use "passwordFile": "<path>").',
    `  "signer": { "type": "keystore", "path": ${JSON.stringify(KEYSTORE_FILE)}, "passwordEnv": ${JSON.stringify(PASSWORD_ENV)} },`,
    "  // Prometheus /metrics, /healthz (503 with reasons), /readyz and /status. Loopback unless scraped from elsewhere.",
    '  "metrics": { "host": "127.0.0.1", "port": 9464 },',
    "  // /healthz fails when the sync trails the head by more blocks, or a transaction is pending longer.",
    '  "health": { "maxLagBlocks": 50, "maxPendingSeconds": 600 },',
    "  // Warn (keeper_operator_balance_low) below this balance, in wei.",
    '  "lowBalanceWei": "100000000000000000",',
    '  "logLevel": "info"',
    "}",
    "",
  ].join("\n");
}

export async function runInit(options: InitOptions): Promise<number> {
  const dir = path.resolve(options.dir);
  const configPath = path.join(dir, CONFIG_FILE);
  const keystorePath = path.join(dir, KEYSTORE_FILE);
  const chainId = options.chainId === undefined ? 31337 : Number(options.chainId);
  const values = {
    rpcUrl: options.rpcUrl ?? "http://127.0.0.1:8545",
    chainId,
    billingAddress: options.billingAddress ?? PLACEHOLDER_BILLING,
    dev: options.dev,
  };
  // The same validation as the keeper's, before anything is written.
  parseConfig({
    rpcUrl: values.rpcUrl,
    chainId: Number.isInteger(chainId) ? chainId : `${options.chainId} (from --chain-id)`,
    billingAddress: values.billingAddress,
    signer: { type: "keystore", path: KEYSTORE_FILE, passwordEnv: PASSWORD_ENV },
  });
  for (const file of [configPath, keystorePath]) {
    if (existsSync(file) && !options.force) {
      throw new ConfigError([`${file} already exists: keep it, or pass --force to replace it (the old key is lost)`]);
    }
  }
  const secret = await password();
  const wallet = Wallet.createRandom();
  const keystore = await wallet.encrypt(secret);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keystorePath, keystore, { mode: 0o600 });
  writeFileSync(configPath, configText(values), { mode: 0o600 });
  process.stdout.write(
    [
      `wrote ${configPath}`,
      `wrote ${keystorePath} (encrypted; keep a backup and the password)`,
      `operator address: ${wallet.address}`,
      "next:",
      `  1. register it: propose an operator rotation adding ${wallet.address} from the Safe (see README, "Keeper runbook")`,
      `  2. fund it with ETH for gas: it pays for every charge transaction`,
      ...(values.billingAddress === PLACEHOLDER_BILLING ? [`  3. set billingAddress in ${configPath}`] : []),
      `  then: ${PASSWORD_ENV}=... keeper check --config ${configPath}`,
      "",
    ].join("\n"),
  );
  return 0;
}
