import { expect } from "chai";
import { network } from "hardhat";

import { DEFAULT_DEMO_OPTIONS, runDemo } from "../scripts/demo/story.js";
import { Narrator } from "../scripts/demo/ui.js";

describe("npm run demo", function () {
  this.timeout(300_000);

  it("tells the whole story on an in-process chain and every check holds", async function () {
    const connection = await network.create();
    const narrator = new Narrator(true);
    let consoleView: { revenue: Record<string, unknown>; overview: Record<string, unknown>; page: string } | undefined;
    try {
      await runDemo(connection, narrator, {
        ...DEFAULT_DEMO_OPTIONS,
        keeperLogLevel: "silent",
        // What a newcomer's browser would get from the billing console at the end of the story.
        onConsole: async (url) => {
          const get = async (path: string) =>
            (await fetch(new URL(path, url))).json() as Promise<Record<string, unknown>>;
          consoleView = {
            revenue: await get("api/revenue"),
            overview: await get("api/overview"),
            page: await (await fetch(url)).text(),
          };
        },
      });
    } finally {
      await connection.close();
    }
    expect(narrator.failed, JSON.stringify(narrator.failed, null, 2)).to.deep.equal([]);
    // The story's own claims: setup, past due/lapse, cancel, a full leak drill, one-transaction rotation, summary.
    const claims = narrator.checks.map((check) => check.claim).join("\n");
    expect(claims).to.include("removal and addition landed in ONE transaction");
    expect(claims).to.include("no token balance moved during the drill");
    expect(claims).to.include("every active subscription is paid up");
    expect(narrator.checks.length).to.be.greaterThan(20);

    // The billing console shows the same revenue per merchant as the chain (the story's own on-chain check).
    const chainRevenue = narrator.checks
      .map((check) => /: revenue ([\d.]+) bUSD is exactly what reached its beneficiary$/.exec(check.claim)?.[1])
      .filter((amount) => amount !== undefined);
    expect(chainRevenue).to.have.length(2);
    const items = consoleView!.revenue.items as Array<{ merchantId: number; formatted: string; symbol: string }>;
    expect(items.map((item) => [item.merchantId, item.formatted, item.symbol])).to.deep.equal(
      chainRevenue.map((amount, index) => [index + 1, amount, "bUSD"]),
    );
    const overview = consoleView!.overview as { subscriptions: Record<string, number>; health: { ok: boolean } };
    expect(overview.health.ok).to.equal(true);
    expect([overview.subscriptions.lapsed, overview.subscriptions.cancelled]).to.deep.equal([2, 1]);
    expect(consoleView!.page).to.contain("<title>Billing console</title>");
  });
});
