// Keeper configuration: a JSON file and/or KEEPER_* environment variables, validated with zod. Every wrong value is
// reported with the field's path, what is expected and (unless it may hold a secret) what was given.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";

import { getAddress, isAddress } from "ethers";
import stripJsonComments from "strip-json-comments";
import { z } from "zod";

/** A configuration problem; `issues` name each wrong field. The process exits with code 2 on it. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid keeper configuration:\n  - ${issues.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const int = (what: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number({ invalid_type_error: `expected ${what}`, required_error: `is required (${what})` })
    .int(`expected ${what}`)
    .min(min, `expected ${what}`)
    .max(max, `expected ${what}`);

const positiveNumber = (what: string) =>
  z
    .number({ invalid_type_error: `expected ${what}` })
    .positive(`expected ${what}`)
    .finite(`expected ${what}`);

const weiString = z
  .union([z.string(), z.number()], { invalid_type_error: "expected an amount in wei as a decimal string" })
  .transform((value, ctx) => {
    const text = String(value);
    if (!/^\d+$/.test(text)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'expected an amount in wei as a decimal string, e.g. "100000000000000000"',
      });
      return z.NEVER;
    }
    return BigInt(text);
  });

const address = z
  .string({
    invalid_type_error: "expected a 0x-prefixed 20-byte address",
    required_error: "is required (the RecurringBilling address)",
  })
  .refine((value) => isAddress(value), "expected a 0x-prefixed 20-byte address (checksummed or lower-case)")
  .transform((value) => getAddress(value));

const httpUrl = z.string({ invalid_type_error: "expected an http(s) URL" }).refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "expected an http(s) URL such as http://127.0.0.1:8545");

const rpcSchema = z
  .object(
    {
      urls: z
        .array(httpUrl, { invalid_type_error: "expected a list of http(s) URLs" })
        .min(1, "expected at least one http(s) URL")
        .max(16, "expected at most 16 URLs")
        .superRefine((urls, ctx) => {
          const seen = new Map<string, number>();
          urls.forEach((url, i) => {
            let key = url;
            try {
              key = new URL(url).href;
            } catch {
              return;
            }
            const first = seen.get(key);
            if (first !== undefined) {
              ctx.addIssue({
                code: z.ZodIssueCode.custom,
                message: `duplicate of entry ${first} (each endpoint once)`,
                path: [i],
              });
            } else seen.set(key, i);
          });
        })
        .optional(),
      maxRetryAfterMs: int("milliseconds between 0 and 600000", 0, 600_000).default(30_000),
      maxLagBlocks: int("a block count >= 0", 0).default(3),
    },
    { invalid_type_error: 'expected { "urls": ["https://...", ...] }' },
  )
  .strict();

const storeSchema = z.union(
  [
    z.object({ dataDir: z.string().min(1, "expected a directory path") }).strict(),
    z
      .object({
        postgresUrl: z
          .string()
          .refine(
            (value) => /^postgres(ql)?:\/\//.test(value),
            "expected a postgres:// or postgresql:// connection URL",
          ),
      })
      .strict(),
  ],
  {
    errorMap: () => ({
      message: 'expected { "dataDir": "<dir>" } (embedded PGlite) or { "postgresUrl": "postgres://..." }',
    }),
  },
);

const busSchema = z
  .object(
    {
      rabbitmqUrl: z
        .string({ required_error: "is required (amqp://user:password@host:5672[/vhost])" })
        .refine(
          (value) => /^amqps?:\/\/[^/]/.test(value),
          "expected an amqp:// or amqps:// URL such as amqp://guest:guest@127.0.0.1:5672",
        ),
      exchange: z
        .string()
        .regex(/^[A-Za-z0-9._:-]{1,255}$/, "expected an exchange name (letters, digits, . _ : -)")
        .default("recurring-billing.events"),
      publishTimeoutMs: int("milliseconds >= 100", 100).default(30_000),
    },
    { invalid_type_error: 'expected { "rabbitmqUrl": "amqp://..." } (omit "bus" for the in-process bus)' },
  )
  .strict();

const signerSchema = z
  .discriminatedUnion(
    "type",
    [
      z
        .object({
          type: z.literal("keystore"),
          path: z.string().min(1, "expected the path of an encrypted JSON keystore"),
          passwordEnv: z
            .string()
            .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name")
            .optional(),
          passwordFile: z.string().min(1, "expected the path of a file holding the password").optional(),
        })
        .strict(),
      z
        .object({
          type: z.literal("env"),
          variable: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name"),
        })
        .strict(),
    ],
    {
      errorMap: (issue, ctx) => ({
        message: issue.code === "invalid_union_discriminator" ? 'expected type "keystore" or "env"' : ctx.defaultError,
      }),
    },
  )
  .superRefine((signer, ctx) => {
    if (signer.type === "keystore" && (signer.passwordEnv === undefined) === (signer.passwordFile === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: "expected exactly one of passwordEnv (variable name) or passwordFile (path)",
        path: ["passwordEnv"],
      });
    }
  });

export const configSchema = z
  .object({
    rpcUrl: httpUrl.default("http://127.0.0.1:8545"),
    /** Several endpoints (rpc.urls wins over rpcUrl), fail-over and rate-limit settings. */
    rpc: rpcSchema.default({}),
    chainId: int("a positive integer chain id, e.g. 31337", 1),
    billingAddress: address,
    startBlock: int("a block number >= 0", 0).default(0),
    confirmations: int("a number of blocks >= 0", 0, 1000).default(2),
    pollIntervalMs: int("milliseconds between 10 and 3600000", 10, 3_600_000).default(1000),
    logRange: z
      .object({
        initial: int("a block count >= 1", 1).default(2000),
        min: int("a block count >= 1", 1).default(1),
        max: int("a block count >= 1", 1).default(10_000),
      })
      .strict()
      .default({})
      .refine((r) => r.min <= r.initial && r.initial <= r.max, { message: "expected min <= initial <= max" }),
    store: storeSchema.default({ dataDir: ".keeper-data" }),
    signer: signerSchema,
    fees: z
      .object({
        maxFeePerGasGwei: positiveNumber("a fee cap in gwei > 0").default(500),
        maxPriorityFeePerGasGwei: positiveNumber("a tip cap in gwei > 0").default(2),
        bumpPercent: z
          .number({ invalid_type_error: "expected a percentage >= 10 (nodes reject smaller replacement bumps)" })
          .min(10, "expected a percentage >= 10 (nodes reject smaller replacement bumps)")
          .max(1000, "expected a percentage <= 1000")
          .default(15),
        replaceAfterMs: int("milliseconds >= 100", 100).default(15_000),
      })
      .strict()
      .default({})
      .refine((f) => f.maxPriorityFeePerGasGwei <= f.maxFeePerGasGwei, {
        message: "expected maxPriorityFeePerGasGwei <= maxFeePerGasGwei",
      }),
    batch: z
      .object({
        gasBudget: int("a gas amount >= 100000", 100_000).default(8_000_000),
        maxItems: int("an item count between 1 and 5000", 1, 5000).default(500),
      })
      .strict()
      .default({}),
    txConfirmations: int("a number of blocks >= 1", 1, 1000).default(1),
    metrics: z
      .object({
        host: z.string().min(1, "expected a host name or IP").default("127.0.0.1"),
        port: int("a TCP port 0..65535 (0 picks a free one)", 0, 65_535).default(9464),
      })
      .strict()
      .default({}),
    // The billing console (a read-only page and its JSON API); off unless a port is given.
    console: z
      .object({
        host: z.string().min(1, "expected a host name or IP").default("127.0.0.1"),
        port: int("a TCP port 0..65535 (0 picks a free one)", 0, 65_535).optional(),
        token: z.string().min(16, "expected at least 16 characters (a bearer token the API requires)").optional(),
      })
      .strict()
      .default({})
      .refine((c) => c.token !== undefined || ["127.0.0.1", "::1", "localhost"].includes(c.host), {
        message: "a console reachable from other machines needs a token (console.token or KEEPER_CONSOLE_TOKEN)",
        path: ["token"],
      }),
    lowBalanceWei: weiString.default("100000000000000000"),
    logLevel: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
        errorMap: () => ({ message: "expected one of fatal, error, warn, info, debug, trace, silent" }),
      })
      .default("info"),
    // Extensions beyond the shared contract, all optional.
    rpcTimeoutMs: int("milliseconds >= 100", 100).default(10_000),
    reorgWindowBlocks: int("a block count between 1 and 10000", 1, 10_000).default(128),
    maxPendingTxs: int("a transaction count between 1 and 64", 1, 64).default(16),
    pastDueRetrySeconds: int("seconds >= 0", 0).default(3600),
    quarantine: z
      .object({
        retrySeconds: int("seconds >= 1 before a quarantined subscription is simulated again", 1).default(3600),
        maxRetrySeconds: int("seconds >= 1 (cap on the doubling back-off)", 1).default(7 * 86_400),
      })
      .strict()
      .default({})
      .refine((q) => q.retrySeconds <= q.maxRetrySeconds, {
        message: "expected retrySeconds <= maxRetrySeconds",
      }),
    // Scale-out: several instances (each with its own operator key) on one PostgreSQL store, and a RabbitMQ bus.
    bus: busSchema.optional(),
    instanceId: z
      .string({ invalid_type_error: "expected a name for this keeper instance" })
      .regex(/^[A-Za-z0-9._:@-]{1,200}$/, "expected a name for this keeper instance (letters, digits, . _ : @ -)")
      .default(() => `${hostname()}-${process.pid}`),
    leases: z
      .object({
        ttlSeconds: int("seconds between 2 and 3600", 2, 3600).default(30),
        followerLagBlocks: int("a block count >= 0", 0).default(20),
      })
      .strict()
      .default({}),
    // When /healthz (and keeper_health_problem) report a problem; see keeper/src/health.ts.
    health: z
      .object({
        maxLagBlocks: int("a block count >= 0", 0).default(50),
        maxPendingSeconds: int("seconds >= 1", 1).default(600),
      })
      .strict()
      .default({}),
  })
  .strict();

export type KeeperConfig = z.output<typeof configSchema>;
export type SignerConfig = KeeperConfig["signer"];

// Fields whose value may carry a secret are never echoed back.
const SECRET_PATHS = new Set(["store.postgresUrl", "rpcUrl", "bus.rabbitmqUrl", "rpc.urls", "console.token"]);

function describeValue(root: unknown, pathParts: (string | number)[]): string {
  const key = pathParts.join(".");
  if (SECRET_PATHS.has(key) || (pathParts[0] === "rpc" && pathParts[1] === "urls")) return "";
  let value: unknown = root;
  for (const part of pathParts) {
    if (value === null || typeof value !== "object") return "";
    value = (value as Record<string | number, unknown>)[part];
  }
  if (value === undefined) return "";
  const text = JSON.stringify(value);
  return text === undefined ? "" : `, got ${text.length > 80 ? `${text.slice(0, 80)}...` : text}`;
}

function formatIssues(error: z.ZodError, input: unknown): string[] {
  return error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join(".") : "config";
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      return `${where === "config" ? "" : `${where}.`}${issue.keys.join(", ")}: unknown field (check the spelling; see keeper/README.md)`;
    }
    return `${where}: ${issue.message}${describeValue(input, issue.path)}`;
  });
}

/** Validates a parsed config object. */
export function parseConfig(input: unknown): KeeperConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new ConfigError(["config: expected a JSON object"]);
  }
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(formatIssues(result.error, input));
  return result.data;
}

type Env = Record<string, string | undefined>;

function numberFromEnv(name: string, value: string): number | string {
  // Keep the text when it is not a number, so validation reports it under the field name with the value given.
  return /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : `${value} (from ${name})`;
}

/** Applies KEEPER_* environment overrides on top of the file's values. */
export function applyEnvOverrides(input: Record<string, unknown>, env: Env): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  const set = (name: string, apply: (value: string) => void) => {
    const value = env[name];
    if (value !== undefined && value !== "") apply(value);
  };
  set("KEEPER_RPC_URL", (v) => (out.rpcUrl = v));
  set("KEEPER_RPC_URLS", (v) => {
    const rpc = out.rpc !== null && typeof out.rpc === "object" ? out.rpc : {};
    out.rpc = { ...rpc, urls: v.split(",").map((url) => url.trim()) };
  });
  set("KEEPER_CHAIN_ID", (v) => (out.chainId = numberFromEnv("KEEPER_CHAIN_ID", v)));
  set("KEEPER_BILLING_ADDRESS", (v) => (out.billingAddress = v));
  set("KEEPER_START_BLOCK", (v) => (out.startBlock = numberFromEnv("KEEPER_START_BLOCK", v)));
  set("KEEPER_CONFIRMATIONS", (v) => (out.confirmations = numberFromEnv("KEEPER_CONFIRMATIONS", v)));
  set("KEEPER_DATA_DIR", (v) => (out.store = { dataDir: v }));
  set("KEEPER_POSTGRES_URL", (v) => (out.store = { postgresUrl: v }));
  set("KEEPER_LOG_LEVEL", (v) => (out.logLevel = v));
  set("KEEPER_INSTANCE_ID", (v) => (out.instanceId = v));
  set("KEEPER_RABBITMQ_URL", (v) => {
    const bus = out.bus !== null && typeof out.bus === "object" ? out.bus : {};
    out.bus = { ...bus, rabbitmqUrl: v };
  });
  set("KEEPER_LOW_BALANCE_WEI", (v) => (out.lowBalanceWei = v));
  const metrics = { ...((out.metrics as object | undefined) ?? {}) } as Record<string, unknown>;
  let metricsChanged = false;
  set("KEEPER_METRICS_HOST", (v) => ((metrics.host = v), (metricsChanged = true)));
  set(
    "KEEPER_METRICS_PORT",
    (v) => ((metrics.port = numberFromEnv("KEEPER_METRICS_PORT", v)), (metricsChanged = true)),
  );
  if (metricsChanged) out.metrics = metrics;
  const consoleSettings = { ...((out.console as object | undefined) ?? {}) } as Record<string, unknown>;
  let consoleChanged = false;
  set("KEEPER_CONSOLE_HOST", (v) => ((consoleSettings.host = v), (consoleChanged = true)));
  set(
    "KEEPER_CONSOLE_PORT",
    (v) => ((consoleSettings.port = numberFromEnv("KEEPER_CONSOLE_PORT", v)), (consoleChanged = true)),
  );
  set("KEEPER_CONSOLE_TOKEN", (v) => ((consoleSettings.token = v), (consoleChanged = true)));
  if (consoleChanged) out.console = consoleSettings;
  if (out.signer === undefined && env.KEEPER_PRIVATE_KEY !== undefined) {
    out.signer = { type: "env", variable: "KEEPER_PRIVATE_KEY" };
  }
  return out;
}

/**
 * Loads the configuration: the JSON file (if given) with environment overrides on top. Relative paths in the
 * file (keystore, password file, data directory) are resolved against the file's directory.
 */
export function loadConfig(file: string | undefined, env: Env = process.env): KeeperConfig {
  let input: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError([
        `--config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      ]);
    }
    let parsed: unknown;
    try {
      // Comments are allowed (`keeper init` writes a commented file); positions are kept for JSON's error offsets.
      parsed = JSON.parse(stripJsonComments(text));
    } catch (err) {
      throw new ConfigError([`--config: ${file} is not valid JSON: ${(err as Error).message}`]);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ConfigError([`--config: ${file} must hold a JSON object`]);
    }
    input = parsed as Record<string, unknown>;
    baseDir = path.dirname(path.resolve(file));
  }
  const config = parseConfig(applyEnvOverrides(input, env));
  const resolve = (p: string) => path.resolve(baseDir, p);
  if ("dataDir" in config.store) config.store = { dataDir: resolve(config.store.dataDir) };
  if (config.signer.type === "keystore") {
    config.signer = {
      ...config.signer,
      path: resolve(config.signer.path),
      passwordFile: config.signer.passwordFile === undefined ? undefined : resolve(config.signer.passwordFile),
    };
  }
  return config;
}

/** The RPC endpoints to use: `rpc.urls` when given, else `rpcUrl`. */
export function rpcUrls(config: KeeperConfig): string[] {
  return config.rpc.urls ?? [config.rpcUrl];
}

/** The configuration as it is safe to log (no URLs with credentials). */
export function describeConfig(config: KeeperConfig): Record<string, unknown> {
  return {
    chainId: config.chainId,
    billingAddress: config.billingAddress,
    startBlock: config.startBlock,
    confirmations: config.confirmations,
    store: "dataDir" in config.store ? { dataDir: config.store.dataDir } : { postgres: true },
    bus: config.bus ? { rabbitmq: true, exchange: config.bus.exchange } : { inProcess: true },
    instanceId: config.instanceId,
    signer:
      config.signer.type === "keystore"
        ? { type: "keystore", path: config.signer.path }
        : { type: "env", variable: config.signer.variable },
    batch: config.batch,
    quarantine: config.quarantine,
    txConfirmations: config.txConfirmations,
    // Never the token itself.
    console:
      config.console.port === undefined
        ? "off"
        : { host: config.console.host, port: config.console.port, token: config.console.token !== undefined },
  };
}
