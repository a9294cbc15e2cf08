// Runs the keeper as a real child process (`node --import tsx keeper/src/main.ts --config <file>`), collects its
// JSON log lines and reads its Prometheus metrics, so tests observe it only from the outside, like an operator would.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const ROOT = path.resolve(new URL("../../..", import.meta.url).pathname);
/** Node 22 from node_modules (Hardhat's own), not whatever `node` is first on PATH. */
const NODE = path.join(ROOT, "node_modules/.bin/node");
const MAIN = path.join(ROOT, "keeper/src/main.ts");

/** The env-var signer's variable in every config this helper writes. */
export const KEY_VARIABLE = "KEEPER_TEST_PRIVATE_KEY";

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scratch directory for config files and keeper data; removed by {@link KeeperWorkspace.remove}. */
export class KeeperWorkspace {
  readonly dir = mkdtempSync(path.join(tmpdir(), "keeper-test-"));
  readonly dataDir = path.join(this.dir, "data");

  /** Writes `config` (an object, or raw text to test parsing) and returns its path. */
  writeConfig(config: unknown, name = "keeper.json"): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config, null, 2));
    return file;
  }

  remove() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface KeeperConfigInput {
  rpcUrl: string;
  chainId: number;
  billingAddress: string;
  startBlock: number;
  dataDir: string;
}

/**
 * A complete keeper config for tests: env-var signer, embedded store, metrics on a free port, fast polling and
 * short replacement delays so a test does not wait on production timings. `overrides` are merged shallowly.
 */
export function keeperConfig(input: KeeperConfigInput, overrides: Record<string, unknown> = {}) {
  return {
    rpcUrl: input.rpcUrl,
    chainId: input.chainId,
    billingAddress: input.billingAddress,
    startBlock: input.startBlock,
    confirmations: 2,
    pollIntervalMs: 200,
    logRange: { initial: 2000, min: 1, max: 10000 },
    store: { dataDir: input.dataDir },
    signer: { type: "env", variable: KEY_VARIABLE },
    fees: { maxFeePerGasGwei: 500, maxPriorityFeePerGasGwei: 2, bumpPercent: 15, replaceAfterMs: 3000 },
    batch: { gasBudget: 8_000_000, maxItems: 200 },
    txConfirmations: 1,
    metrics: { host: "127.0.0.1", port: 0 },
    lowBalanceWei: "100000000000000000",
    logLevel: "info",
    ...overrides,
  };
}

export class KeeperProcess {
  readonly logs: LogLine[] = [];
  /** Non-JSON output (stderr, stack traces), kept for failure messages. */
  readonly output: string[] = [];
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private waiters = new Set<() => void>();

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
    let partial = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) this.take(line);
      this.notify();
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.output.push(chunk);
      this.notify();
    });
  }

  /** Spawns the keeper with `configPath`; `privateKey` goes in the env-var signer's variable, never in a file. */
  static start(configPath: string, privateKey?: string, env: Record<string, string> = {}): KeeperProcess {
    const child = spawn(NODE, ["--import", "tsx", MAIN, "--config", configPath], {
      cwd: ROOT,
      env: { ...inheritedEnv(), ...(privateKey === undefined ? {} : { [KEY_VARIABLE]: privateKey }), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group: a kill reaches anything the keeper spawned, so no orphan keeps signing.
      detached: true,
    });
    return new KeeperProcess(child);
  }

  /**
   * Spawns any command line (e.g. the production entry `node dist/keeper.mjs run --config ...`, or `npm run keeper`)
   * as the keeper, in its own process group.
   */
  static spawn(command: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): KeeperProcess {
    const child = spawn(command, args, {
      cwd,
      env: { ...inheritedEnv(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    return new KeeperProcess(child);
  }

  /** Sends `signal` to the process itself only (as a supervisor does), not to its group. */
  signal(signal: NodeJS.Signals): void {
    process.kill(this.pid, signal);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The /metrics URL from the "keeper started" line (which may give the server's base URL). */
  get metricsUrl(): string | undefined {
    const started = this.logs.find((line) => line.msg === "keeper started");
    if (typeof started?.metricsUrl !== "string") return undefined;
    const url = new URL(started.metricsUrl);
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/metrics";
    return url.toString();
  }

  /** GET /healthz next to /metrics: the HTTP status and the JSON body. */
  async health(): Promise<{ status: number; body: unknown }> {
    const url = new URL("/healthz", this.metricsUrl ?? "http://127.0.0.1:1");
    const response = await fetch(url, { headers: { connection: "close" } });
    return { status: response.status, body: await response.json().catch(() => undefined) };
  }

  /** Logs and stray output, for assertion messages. */
  describe(lastLines = 30): string {
    const tail = this.logs.slice(-lastLines).map((line) => JSON.stringify(line));
    return [...tail, ...this.output].join("\n");
  }

  /** Resolves with the first log line matching `match` (a `msg` or a predicate); rejects on exit or timeout. */
  async waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs = 30_000): Promise<LogLine> {
    const test = typeof match === "string" ? (line: LogLine) => line.msg === match : match;
    return this.waitFor(
      () => this.logs.find(test),
      timeoutMs,
      `log ${typeof match === "string" ? JSON.stringify(match) : "line"}`,
    );
  }

  /** Waits for the "keeper started" line and returns the metrics URL. */
  async waitForStart(timeoutMs = 30_000): Promise<string> {
    await this.waitForLog("keeper started", timeoutMs);
    const url = this.metricsUrl;
    if (url === undefined) throw new Error(`"keeper started" has no metricsUrl:\n${this.describe()}`);
    return url;
  }

  /** Every sample of the keeper's /metrics. */
  async metrics(): Promise<Sample[]> {
    const url = this.metricsUrl;
    if (url === undefined) throw new Error("the keeper has not logged its metrics URL yet");
    // A fresh connection per scrape: a reused keep-alive socket can be reset by the server just as it is reused.
    const response = await fetch(url, { headers: { connection: "close" } });
    if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
    return parsePrometheus(await response.text());
  }

  /** Sum of the samples of `name` whose labels include `labels` (0 when none). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sumSamples(await this.metrics(), name, labels);
  }

  /** Polls /metrics until `name` satisfies `predicate`; returns the value. */
  async waitForMetric(
    name: string,
    predicate: (value: number) => boolean,
    timeoutMs = 30_000,
    labels: Record<string, string> = {},
  ): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last: number | undefined;
    for (;;) {
      if (!this.running)
        throw new Error(`keeper exited (${JSON.stringify(this.exit)}) waiting for ${name}:\n${this.describe()}`);
      try {
        last = await this.metric(name, labels);
        if (predicate(last)) return last;
      } catch {
        // The metrics server may not be up yet or may be between restarts.
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${name} (last ${last}):\n${this.describe()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Sends `signal` to the keeper's process group and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL", timeoutMs = 20_000): Promise<Exit> {
    if (this.running) {
      try {
        process.kill(-this.pid, signal);
      } catch {
        // Already gone.
      }
    }
    const timer = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`keeper did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs).unref(),
    );
    return Promise.race([this.exited, timer]);
  }

  /** Resolves when the process exits within `timeoutMs`, or with undefined while it still runs then. */
  async exitWithin(timeoutMs: number): Promise<Exit | undefined> {
    const timer = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref());
    return Promise.race([this.exited, timer]);
  }

  private take(line: string) {
    if (line.trim() === "") return;
    try {
      this.logs.push(JSON.parse(line) as LogLine);
    } catch {
      this.output.push(line);
    }
  }

  private notify() {
    for (const waiter of this.waiters) waiter();
  }

  private waitFor<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) finish(() => resolve(found));
        else if (!this.running)
          finish(() =>
            reject(new Error(`keeper exited (${JSON.stringify(this.exit)}) before ${what}:\n${this.describe()}`)),
          );
      };
      const timer = setTimeout(
        () =>
          finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${this.describe()}`))),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** This process's environment minus KEEPER_* variables, which would override the test's config file. */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("KEEPER_")));
}

/** Parses the Prometheus text exposition format (what prom-client serves). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

export function sumSamples(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name)
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}
