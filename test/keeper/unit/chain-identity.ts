// The chain-identity check against a provider whose answers are scripted: one wrong genesis read (a node behind a
// load balancer, a crossed answer) must not stop the keeper; a genesis that stays different must.
import { expect } from "chai";

import { ChainResetError, checkChainIdentity } from "../../../keeper/src/chain-identity.js";
import { type Db, migrate, PgliteDb } from "../../../keeper/src/store/index.js";

const A = `0x${"aa".repeat(32)}`;
const B = `0x${"bb".repeat(32)}`;

/** A provider answering block 0 with the next hash of `answers` (the last one repeats). */
function scripted(answers: string[]) {
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    getBlock: async (block: unknown) => {
      expect(block).to.equal(0);
      const hash = answers[Math.min(reads, answers.length - 1)];
      reads += 1;
      return { hash } as Awaited<ReturnType<Parameters<typeof checkChainIdentity>[1]["getBlock"]>>;
    },
  };
}

async function stored(db: Db): Promise<string | undefined> {
  const rows = await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'genesisHash'");
  return rows[0]?.value;
}

describe("Keeper chain identity", function () {
  let db: Db;
  beforeEach(async function () {
    db = await PgliteDb.open();
    await migrate(db);
  });
  afterEach(async function () {
    await db.close();
  });

  it("records the genesis only when two reads agree", async function () {
    await checkChainIdentity(db, scripted([A, B]), "hint", 0);
    expect(await stored(db)).to.equal(undefined);
    await checkChainIdentity(db, scripted([A, A]), "hint", 0);
    expect(await stored(db)).to.equal(A);
  });

  it("ignores a single wrong read, and a wrong read followed by two more, as long as one re-read agrees", async function () {
    await checkChainIdentity(db, scripted([A, A]), "hint", 0);
    const once = scripted([B, A]);
    await checkChainIdentity(db, once, "hint", 0);
    expect(once.reads).to.equal(2);
    await checkChainIdentity(db, scripted([B, B, B, A]), "hint", 0);
  });

  it("stops on a genesis that stays different, naming both hashes and how to start over", async function () {
    await checkChainIdentity(db, scripted([A, A]), "move away the store", 0);
    const error = await checkChainIdentity(db, scripted([B]), "move away the store", 0).catch((e: Error) => e);
    expect(error).to.be.instanceOf(ChainResetError);
    expect((error as Error).message).to.equal(
      `chain reset: the node's genesis block is ${B}, the store was built on a chain whose genesis is ${A}; this store belongs to the old chain. To start over: stop the keeper, move away the store, redeploy or re-point billingAddress, and start it again`,
    );
  });
});
