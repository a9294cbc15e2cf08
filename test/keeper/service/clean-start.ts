// A healthy node must not show up as an RPC error: a keeper that starts (the embedded store's first open blocks the
// event loop for seconds, long enough for the server to close the kept-alive connection) and bills must count no
// failed JSON-RPC call, or the rpc-errors alert cries wolf at every start.
import { expect } from "chai";

import { MONTH } from "../support/billing-setup.js";
import { Scenario } from "../support/scenario.js";

describe("Keeper (clean start)", function () {
  this.timeout(120_000);
  let scenario: Scenario;

  before(async function () {
    scenario = await Scenario.start({ chain: { intervalMs: 200 }, subscriptions: 2 });
  });
  after(async function () {
    await scenario?.stop();
  });

  it("counts no failed RPC call against a healthy node while starting, syncing and charging", async function () {
    const keeper = await scenario.startKeeper();
    await keeper.waitForMetric("keeper_operator_registered", (value) => value === 1);
    await scenario.chain.warp(MONTH);
    await scenario.waitForCharges(4, 60_000, keeper);
    const samples = await keeper.metrics();
    const failed = samples.filter((sample) => sample.name === "keeper_rpc_errors_total" && sample.value > 0);
    expect(failed, "failed RPC calls").to.deep.equal([]);
    const outcomes = samples.filter((s) => s.name === "keeper_rpc_requests_total").map((s) => s.labels.outcome);
    expect(outcomes).to.deep.equal(["ok"]);
  });
});
