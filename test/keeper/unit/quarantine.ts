// The quarantine store: back-off per failure, durability, release.
import { expect } from "chai";

import { Quarantine, quarantineBackoff } from "../../../keeper/src/quarantine.js";
import { migrate, PgliteDb } from "../../../keeper/src/store/index.js";

const OPTIONS = { retrySeconds: 60, maxRetrySeconds: 300 };

describe("Keeper quarantine", function () {
  it("doubles the back-off with each failure up to the cap", function () {
    expect([1, 2, 3, 4, 5, 100].map((failures) => quarantineBackoff(failures, OPTIONS))).to.deep.equal([
      60n,
      120n,
      240n,
      300n,
      300n,
      300n,
    ]);
  });

  it("counts failures per id, keeps them in the store, and releases only the ids asked for", async function () {
    const db = await PgliteDb.open();
    try {
      await migrate(db);
      const first = await new Quarantine(db, OPTIONS).add([7n, 9n], 1000n, "execution reverted");
      expect(first).to.deep.equal([
        { id: 7n, failures: 1, retryAt: 1060n },
        { id: 9n, failures: 1, retryAt: 1060n },
      ]);
      // A new instance on the same store (a restart) sees the quarantine and counts on from it.
      const restarted = new Quarantine(db, OPTIONS);
      expect(await restarted.ids()).to.deep.equal([7n, 9n]);
      expect(await restarted.add([7n], 2000n, "execution reverted")).to.deep.equal([
        { id: 7n, failures: 2, retryAt: 2120n },
      ]);
      expect(await restarted.release([9n, 11n])).to.deep.equal([9n]);
      expect(await restarted.ids()).to.deep.equal([7n]);
      const [row] = await db.query<{ reason: string }>("SELECT reason FROM quarantine");
      expect(row.reason).to.equal("execution reverted");
    } finally {
      await db.close();
    }
  });
});
