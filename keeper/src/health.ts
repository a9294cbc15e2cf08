// What keeps the keeper from doing its job, as a list of reasons: /healthz answers 503 with them and the
// keeper_health_problem{reason} gauge carries the same names, so a probe and an alert always agree.

/** Every reason /healthz and keeper_health_problem can report (stable names: alert rules match on them). */
export const HEALTH_REASONS = [
  "not_running",
  "loop_stalled",
  "operator_not_registered",
  "cannot_pay_next_batch",
  "sync_lagging",
  "tx_pending_too_long",
] as const;

export type HealthReason = (typeof HEALTH_REASONS)[number];

export interface HealthThresholds {
  /** Blocks the sync may trail the head by (beyond the confirmations) before it counts as lagging. */
  maxLagBlocks: number;
  /** Seconds a transaction may stay unconfirmed. */
  maxPendingSeconds: number;
}

/** What the keeper knows right now; undefined means "not measured yet" and never raises a problem by itself. */
export interface HealthFacts {
  phase: "starting" | "running" | "stopping" | "stopped";
  /** The loop completed a pass recently. */
  loopFresh: boolean;
  operatorRegistered?: boolean;
  /** ETH balance of the operator, and what the next batch may cost at today's fees. */
  balanceWei?: bigint;
  nextBatchCostWei?: bigint;
  /** The node refused a transaction for lack of funds since the last one it accepted. */
  fundsRefused?: boolean;
  headLagBlocks?: number;
  oldestPendingSeconds?: number;
}

export interface HealthReport {
  ok: boolean;
  reasons: { reason: HealthReason; detail: string }[];
}

/** Turns the facts into the list of problems (empty when healthy). */
export function evaluateHealth(facts: HealthFacts, thresholds: HealthThresholds): HealthReport {
  const reasons: HealthReport["reasons"] = [];
  const add = (reason: HealthReason, detail: string) => reasons.push({ reason, detail });
  if (facts.phase !== "running") add("not_running", `keeper is ${facts.phase}`);
  else if (!facts.loopFresh) add("loop_stalled", "no successful pass recently (see lastError)");
  if (facts.operatorRegistered === false) {
    add("operator_not_registered", "the operator key is not registered in the OperatorRegistry: nothing is charged");
  }
  if (facts.fundsRefused) {
    add("cannot_pay_next_batch", "the node refused a transaction for insufficient funds: fund the operator");
  } else if (
    facts.balanceWei !== undefined &&
    facts.nextBatchCostWei !== undefined &&
    facts.balanceWei < facts.nextBatchCostWei
  ) {
    add(
      "cannot_pay_next_batch",
      `operator balance ${facts.balanceWei} wei < ${facts.nextBatchCostWei} wei for one batch at current fees`,
    );
  }
  if (facts.headLagBlocks !== undefined && facts.headLagBlocks > thresholds.maxLagBlocks) {
    add("sync_lagging", `sync is ${facts.headLagBlocks} blocks behind the head (limit ${thresholds.maxLagBlocks})`);
  }
  if (facts.oldestPendingSeconds !== undefined && facts.oldestPendingSeconds > thresholds.maxPendingSeconds) {
    add(
      "tx_pending_too_long",
      `a transaction has been pending ${Math.round(facts.oldestPendingSeconds)} s (limit ${thresholds.maxPendingSeconds} s)`,
    );
  }
  return { ok: reasons.length === 0, reasons };
}
