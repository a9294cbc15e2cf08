import { expect } from "chai";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { KeeperMetrics } from "../../../keeper/src/metrics.js";
import { KEY_VARIABLE, KeeperProcess } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";
import { BUNDLE, buildBundle, freePort, NODE, ROOT } from "./support.js";

const run = promisify(execFile);
const OPS = path.join(ROOT, "keeper/ops");
const RULES = path.join(OPS, "prometheus/keeper-alerts.yml");
const RULE_TESTS = path.join(OPS, "prometheus/keeper-alerts.test.yml");
const DASHBOARD = path.join(OPS, "grafana/keeper-dashboard.json");
const INSTALL = "install it with `apt-get update && apt-get install -y prometheus` (.ci/run does)";

async function tool(name: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(name, args, { cwd: OPS });
    return stdout + stderr;
  } catch (err) {
    const error = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (error.code === "ENOENT") throw new Error(`${name} is not installed: ${INSTALL}`);
    throw new Error(`${name} ${args.join(" ")} failed:\n${error.stdout ?? ""}${error.stderr ?? ""}`);
  }
}

/** Metric names an expression uses (identifiers followed by `{`, `[` or an operator, minus PromQL keywords). */
function metricNames(expr: string): string[] {
  const keywords = new Set(["sum", "by", "rate", "without", "on", "and", "or", "unless", "max", "min", "avg"]);
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, "{}");
  return [...withoutStrings.matchAll(/\b([a-z_:][a-z0-9_:]*)\b(?!\s*\()/g)]
    .map((match) => match[1])
    .filter((name) => !keywords.has(name) && (name.includes("_") || name === "up"));
}

describe("Keeper operations files (keeper/ops)", function () {
  this.timeout(240_000);

  it("alert rules pass `promtool check rules` and their unit tests (`promtool test rules`)", async function () {
    expect(await tool("promtool", ["check", "rules", RULES])).to.include("SUCCESS: 14 rules found");
    expect(await tool("promtool", ["test", "rules", RULE_TESTS])).to.include("SUCCESS");
  });

  it("rules and dashboard use only metrics the keeper exports", async function () {
    const exported = new Set(
      (await new KeeperMetrics().registry.getMetricsAsJSON()).map((metric) => metric.name).concat("up"),
    );
    const rules = readFileSync(RULES, "utf8");
    const exprs = [...rules.matchAll(/^\s+expr: (.+)$/gm)].map((match) => match[1]);
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    exprs.push(...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)));
    expect(exprs.length).to.be.greaterThan(20);
    const unknown = exprs.flatMap(metricNames).filter((name) => !exported.has(name));
    expect(unknown).to.deep.equal([]);
    // Every metric the keeper exports is on the dashboard.
    const shown = new Set(exprs.flatMap(metricNames));
    expect([...exported].filter((name) => !shown.has(name))).to.deep.equal([]);
  });

  describe("a real Prometheus scraping a running keeper", function () {
    let scenario: Scenario;
    let prometheus: ChildProcess | undefined;
    let dir: string;

    before(async function () {
      await buildBundle();
      scenario = await Scenario.start({
        chain: { intervalMs: 200 },
        subscriptions: 1,
        deploy: { registerOperator: false },
      });
      dir = mkdtempSync(path.join(tmpdir(), "keeper-prometheus-"));
    });

    after(async function () {
      prometheus?.kill("SIGKILL");
      await scenario?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("fires KeeperOperatorNotRegistered (the rule file as shipped, for: 1m) for an unregistered operator", async function () {
      const keeper = KeeperProcess.spawn(NODE, [BUNDLE, "run", "--config", scenario.configPath], {
        [KEY_VARIABLE]: scenario.deployment.operator.privateKey,
      });
      scenario.keepers.push(keeper);
      const metricsUrl = new URL(await keeper.waitForStart(60_000));
      const port = await freePort();
      writeFileSync(
        path.join(dir, "prometheus.yml"),
        [
          "global:",
          "  scrape_interval: 1s",
          "  evaluation_interval: 1s",
          "rule_files:",
          `  - ${JSON.stringify(RULES)}`,
          "scrape_configs:",
          "  - job_name: keeper",
          "    static_configs:",
          `      - targets: [${JSON.stringify(metricsUrl.host)}]`,
          "",
        ].join("\n"),
      );
      const output: string[] = [];
      prometheus = spawn(
        "prometheus",
        [
          `--config.file=${path.join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${path.join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      prometheus.on("error", (err) => output.push(`${err.message}: ${INSTALL}`));
      prometheus.stdout!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
      prometheus.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));

      const startedAt = Date.now();
      const deadline = startedAt + 150_000;
      let alerts: { labels: Record<string, string>; state: string }[] = [];
      for (;;) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/api/v1/alerts`);
          alerts = ((await response.json()) as { data: { alerts: typeof alerts } }).data.alerts;
        } catch {
          // Not listening yet.
        }
        if (
          alerts.some((alert) => alert.labels.alertname === "KeeperOperatorNotRegistered" && alert.state === "firing")
        ) {
          break;
        }
        if (Date.now() > deadline) {
          throw new Error(`no firing alert after 150 s: ${JSON.stringify(alerts)}\n${output.join("").slice(-3000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      console.log(
        `      KeeperOperatorNotRegistered fired ${Math.round((Date.now() - startedAt) / 1000)} s after Prometheus started`,
      );
      const firing = alerts.filter((alert) => alert.state === "firing").map((alert) => alert.labels.alertname);
      expect(firing).to.deep.equal(["KeeperOperatorNotRegistered"]);
      expect(alerts.find((alert) => alert.state === "firing")!.labels).to.include({
        job: "keeper",
        severity: "critical",
      });
    });
  });
});
