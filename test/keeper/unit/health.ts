import { expect } from "chai";

import { evaluateHealth, type HealthFacts } from "../../../keeper/src/health.js";

const thresholds = { maxLagBlocks: 10, maxPendingSeconds: 300 };
const healthy: HealthFacts = {
  phase: "running",
  loopFresh: true,
  operatorRegistered: true,
  balanceWei: 10n ** 18n,
  nextBatchCostWei: 10n ** 16n,
  fundsRefused: false,
  headLagBlocks: 0,
  oldestPendingSeconds: 0,
};
const reasons = (facts: Partial<HealthFacts>) =>
  evaluateHealth({ ...healthy, ...facts }, thresholds).reasons.map((r) => r.reason);

describe("Keeper health", function () {
  it("is ok with no problem", function () {
    expect(evaluateHealth(healthy, thresholds)).to.deep.equal({ ok: true, reasons: [] });
  });

  it("names each problem that keeps the keeper from charging", function () {
    expect(reasons({ phase: "starting" })).to.deep.equal(["not_running"]);
    expect(reasons({ loopFresh: false })).to.deep.equal(["loop_stalled"]);
    expect(reasons({ operatorRegistered: false })).to.deep.equal(["operator_not_registered"]);
    expect(reasons({ balanceWei: 10n ** 16n - 1n })).to.deep.equal(["cannot_pay_next_batch"]);
    expect(reasons({ fundsRefused: true })).to.deep.equal(["cannot_pay_next_batch"]);
    expect(reasons({ headLagBlocks: 11 })).to.deep.equal(["sync_lagging"]);
    expect(reasons({ oldestPendingSeconds: 301 })).to.deep.equal(["tx_pending_too_long"]);
  });

  it("accepts values at the thresholds and facts not measured yet", function () {
    expect(reasons({ headLagBlocks: 10, oldestPendingSeconds: 300, balanceWei: 10n ** 16n })).to.deep.equal([]);
    expect(
      reasons({
        operatorRegistered: undefined,
        balanceWei: undefined,
        headLagBlocks: undefined,
        fundsRefused: undefined,
      }),
    ).to.deep.equal([]);
  });

  it("reports several problems at once", function () {
    expect(reasons({ operatorRegistered: false, headLagBlocks: 50 })).to.deep.equal([
      "operator_not_registered",
      "sync_lagging",
    ]);
  });
});
