// Prometheus metrics (prom-client, a registry of our own) and the HTTP server for /metrics and /healthz.
import http from "node:http";
import type { AddressInfo } from "node:net";

import { Counter, Gauge, Registry } from "prom-client";

/** The keeper's metrics; names are part of the operations contract (see keeper/README.md). */
export class KeeperMetrics {
  readonly registry = new Registry();
  readonly headLag = this.gauge("keeper_head_lag_blocks", "Blocks between the chain head and the last synced block");
  readonly syncedBlock = this.gauge("keeper_synced_block", "Last block whose events are stored");
  readonly eventsSynced = this.counter("keeper_events_synced_total", "Contract events stored");
  readonly reorgs = this.counter("keeper_reorgs_total", "Reorgs detected and rolled back");
  readonly chargesSent = this.counter(
    "keeper_charges_sent_total",
    "Subscriptions included in sent charge transactions",
  );
  readonly chargesConfirmed = this.counter(
    "keeper_charges_confirmed_total",
    "Periods paid by final charge transactions",
  );
  readonly chargesFailed = this.counter(
    "keeper_charges_failed_total",
    "Subscriptions in final charge transactions that were not paid (payment failed, lapsed, skipped or reverted)",
  );
  readonly replacements = this.counter("keeper_tx_replacements_total", "Stuck transactions replaced with higher fees");
  readonly pendingTxs = this.gauge("keeper_pending_txs", "Sent transactions not yet final");
  readonly oldestPendingAge = this.gauge(
    "keeper_oldest_pending_tx_age_seconds",
    "Age of the oldest transaction not yet final",
  );
  readonly operatorBalance = this.gauge("keeper_operator_balance_wei", "ETH balance of the operator account, in wei");
  readonly operatorBalanceLow = this.gauge(
    "keeper_operator_balance_low",
    "1 when the operator balance is below lowBalanceWei",
  );
  readonly operatorRegistered = this.gauge(
    "keeper_operator_registered",
    "1 when the registry counts the keeper's key as an operator",
  );
  readonly syncLeader = this.gauge(
    "keeper_sync_leader",
    "1 while this instance holds the sync lease (syncs events and publishes them); always 1 on the embedded store",
  );
  readonly busOutboxDepth = this.gauge(
    "keeper_bus_outbox_depth",
    "Bus messages (events and retractions) committed to the store and not yet confirmed by the bus; measured by the sync leader, 0 on other instances",
  );
  readonly leaseHeartbeatFailures = this.counter(
    "keeper_lease_heartbeat_failures_total",
    "Lease renewals between loop passes that failed (the store was unreachable); shared store only",
  );
  readonly quarantined = new Gauge({
    name: "keeper_quarantined_subscriptions",
    help: "1 for each subscription set aside because its charge fails in simulation (label: its id)",
    labelNames: ["subscription_id"] as const,
    registers: [this.registry],
  });
  readonly healthProblem = new Gauge({
    name: "keeper_health_problem",
    help: "1 while the problem named by reason keeps the keeper from doing its job (the reasons /healthz gives)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly rpcErrors = new Counter({
    name: "keeper_rpc_errors_total",
    help: "Failed JSON-RPC calls by method and kind",
    labelNames: ["method", "kind"] as const,
    registers: [this.registry],
  });

  readonly rpcRequests = new Counter({
    name: "keeper_rpc_requests_total",
    help: "JSON-RPC requests per endpoint and outcome (ok, or the error kind)",
    labelNames: ["endpoint", "outcome"] as const,
    registers: [this.registry],
  });
  readonly rpcEndpointLag = new Gauge({
    name: "keeper_rpc_endpoint_head_lag_blocks",
    help: "Blocks an endpoint's head is behind the best head of all endpoints",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly rpcEndpointHealthy = new Gauge({
    name: "keeper_rpc_endpoint_healthy",
    help: "1 while an endpoint is used for reads (not set aside after faults, rate limits or lag)",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly rpcEndpointLatency = new Gauge({
    name: "keeper_rpc_endpoint_latency_seconds",
    help: "Latency of an endpoint's last answered request",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  readonly inconsistentLogs = this.counter(
    "keeper_sync_inconsistent_answers_total",
    "eth_getLogs answers that contradicted the block headers (lagging log index): range held and read again",
  );
  readonly subscriptionGap = this.gauge(
    "keeper_store_subscription_gap",
    "Subscriptions the contract counted at the synced block minus those in the store (0 when the sync missed none)",
  );
  readonly reorgSuspicions = new Counter({
    name: "keeper_reorg_suspicions_total",
    help: "Stored block hashes a read contradicted, by whether re-reads confirmed the reorg",
    labelNames: ["confirmed"] as const,
    registers: [this.registry],
  });

  readonly loopSeconds = new Counter({
    name: "keeper_loop_seconds_total",
    help: "Seconds the main loop spent per phase (sync, leases, txs, schedule, checks): where a pass's time goes",
    labelNames: ["phase"] as const,
    registers: [this.registry],
  });

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }
}

export interface Health {
  ok: boolean;
  [key: string]: unknown;
}

/**
 * Serves GET /metrics, GET /healthz (200 when healthy, 503 otherwise, JSON body either way), GET /readyz (200 once
 * started up: chain and contract checked, store open) and GET /status (what `keeper status` prints).
 */
export async function startMetricsServer(
  metrics: KeeperMetrics,
  health: () => Health,
  host: string,
  port: number,
  ready: () => Health = health,
  status?: () => Promise<unknown>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      metrics.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(body);
        })
        .catch((err: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(err.message);
        });
      return;
    }
    if (req.method === "GET" && path === "/status" && status !== undefined) {
      status()
        .then((body) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        })
        .catch((err: Error) => {
          res.writeHead(503, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: err.message }));
        });
      return;
    }
    if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) {
      const status = path === "/healthz" ? health() : ready();
      res.writeHead(status.ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify(status));
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found: try /metrics, /healthz or /readyz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
