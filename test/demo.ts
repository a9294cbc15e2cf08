import { expect } from "chai";
import { network } from "hardhat";

import { DEFAULT_DEMO_OPTIONS, runDemo } from "../scripts/demo/story.js";
import { Narrator } from "../scripts/demo/ui.js";

describe("npm run demo", function () {
  this.timeout(300_000);

  it("tells the whole story on an in-process chain and every check holds", async function () {
    const connection = await network.create();
    const narrator = new Narrator(true);
    try {
      await runDemo(connection, narrator, { ...DEFAULT_DEMO_OPTIONS, keeperLogLevel: "silent" });
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
  });
});
