import { existsSync } from "node:fs";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";

import { OWNER_KEYS, ethers } from "./fixtures.js";
import { runTask, taskSetup as setup } from "./task-runner.js";

describe("Safe operator tasks", function () {
  afterEach(function () {
    delete process.env.TEST_OWNER_A_KEY;
    delete process.env.TEST_OWNER_B_KEY;
  });

  it("propose, sign by two owners (keys from configuration variables) and execute through the CLI", async function () {
    const { registry, registryAddress, operator, newOperator, file, contracts } = await setup();
    const propose = await runTask("operators:propose", {
      registry: registryAddress,
      remove: operator.address,
      add: newOperator.address,
      file,
      contracts,
    });
    expect(propose.success, propose.error?.message).to.equal(true);

    process.env.TEST_OWNER_A_KEY = OWNER_KEYS[0];
    process.env.TEST_OWNER_B_KEY = OWNER_KEYS[2];
    for (const keyVar of ["TEST_OWNER_A_KEY", "TEST_OWNER_B_KEY"]) {
      const sign = await runTask("operators:sign", { file, keyVar, contracts, yes: true });
      expect(sign.success, sign.error?.message).to.equal(true);
    }
    const stored = JSON.parse(await readFile(file, "utf8")) as { signatures: unknown[] };
    expect(stored.signatures).to.have.length(2);

    const execute = await runTask("operators:execute", { file, account: "6", contracts });
    expect(execute.success, execute.error?.message).to.equal(true);
    expect(await registry.operators()).to.deep.equal([newOperator.address]);
  });

  it("reports a malformed address as a failed result and sends nothing", async function () {
    const { registryAddress, file } = await setup();
    const before = await ethers.provider.getBlockNumber();
    const result = await runTask("operators:propose", { registry: registryAddress, add: "0x12345", file });
    expect(result.success).to.equal(false);
    expect(result.error?.message).to.equal(
      '--add: "0x12345" is not a valid address (expected 0x followed by 40 hex digits)',
    );
    expect(await ethers.provider.getBlockNumber()).to.equal(before);
  });

  it("refuses to sign with a key that is not an owner's", async function () {
    const { registryAddress, operator, file, contracts } = await setup();
    await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
    process.env.TEST_OWNER_A_KEY = ethers.id("not an owner");
    const result = await runTask("operators:sign", { file, keyVar: "TEST_OWNER_A_KEY", contracts, yes: true });
    expect(result.success).to.equal(false);
    expect(result.error?.message).to.match(/is not an owner of Safe/);
    expect(result.error?.message).not.to.contain(ethers.id("not an owner").slice(2));
  });

  it("refuses to execute with too few signatures", async function () {
    const { registry, registryAddress, operator, file, contracts } = await setup();
    await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
    process.env.TEST_OWNER_A_KEY = OWNER_KEYS[1];
    expect(
      (await runTask("operators:sign", { file, keyVar: "TEST_OWNER_A_KEY", contracts, yes: true })).success,
    ).to.equal(true);
    const result = await runTask("operators:execute", { file, account: "6", contracts });
    expect(result.error?.message).to.match(/too few signatures: 1 of the 2 required/);
    expect(await registry.operators()).to.deep.equal([operator.address]);
  });

  it("lets only the guardian revoke directly", async function () {
    const { registryAddress, operator } = await setup();
    const result = await runTask("operators:revoke", {
      registry: registryAddress,
      remove: operator.address,
      account: "7",
    });
    expect(result.error?.message).to.match(/is not the registry's guardian \(none is set\)/);
  });
  describe("operators:propose-guardian", function () {
    it("sets the guardian through propose, sign by two owners and execute; sign shows what is approved", async function () {
      const { registry, registryAddress, guardian, operator, file, contracts } = await setup();
      const propose = await runTask("operators:propose-guardian", {
        registry: registryAddress,
        guardian: guardian.address,
        file,
        contracts,
      });
      expect(propose.success, propose.error?.message).to.equal(true);

      process.env.TEST_OWNER_A_KEY = OWNER_KEYS[0];
      process.env.TEST_OWNER_B_KEY = OWNER_KEYS[1];
      for (const keyVar of ["TEST_OWNER_A_KEY", "TEST_OWNER_B_KEY"]) {
        const sign = await runTask("operators:sign", { file, keyVar, contracts, yes: true });
        expect(sign.success, sign.error?.message).to.equal(true);
        expect(sign.output).to.contain(`call 1:     ${registryAddress}.setGuardian(address), value 0, operation CALL`);
        expect(sign.output).to.contain(`                newGuardian: ${guardian.address}`);
        expect(sign.output).to.contain(`guardian:   none -> ${guardian.address}`);
      }
      const execute = await runTask("operators:execute", { file, account: "6", contracts });
      expect(execute.success, execute.error?.message).to.equal(true);
      expect(await registry.guardian()).to.equal(guardian.address);

      const revoke = await runTask("operators:revoke", {
        registry: registryAddress,
        remove: operator.address,
        account: "7",
      });
      expect(revoke.success, revoke.error?.message).to.equal(true);
      expect(await registry.operators()).to.deep.equal([]);
    });

    it("prints that the zero address disables the fast path", async function () {
      const { registryAddress, file, contracts } = await setup();
      const result = await runTask("operators:propose-guardian", {
        registry: registryAddress,
        guardian: "0x1111111111111111111111111111111111111111",
        file,
        contracts,
      });
      expect(result.success, result.error?.message).to.equal(true);
      process.env.TEST_OWNER_A_KEY = OWNER_KEYS[0];
      process.env.TEST_OWNER_B_KEY = OWNER_KEYS[1];
      for (const keyVar of ["TEST_OWNER_A_KEY", "TEST_OWNER_B_KEY"]) {
        expect((await runTask("operators:sign", { file, keyVar, contracts, yes: true })).success).to.equal(true);
      }
      expect((await runTask("operators:execute", { file, account: "6", contracts })).success).to.equal(true);

      const disable = path.join(path.dirname(file), "disable.json");
      const proposed = await runTask("operators:propose-guardian", {
        registry: registryAddress,
        guardian: ethers.ZeroAddress,
        file: disable,
        contracts,
      });
      expect(proposed.success, proposed.error?.message).to.equal(true);
      expect(proposed.output).to.contain("guardian:   0x1111111111111111111111111111111111111111 -> none");
      expect(proposed.output).to.contain("the zero address DISABLES the guardian fast path");
    });

    it("refuses a missing, malformed or non-checksummed --guardian and sends nothing", async function () {
      const { registryAddress, file, contracts } = await setup();
      const before = await ethers.provider.getBlockNumber();
      const missing = await runTask("operators:propose-guardian", { registry: registryAddress, file, contracts });
      expect(missing.error?.message).to.equal(
        "--guardian is required: the new guardian's address, or the zero address " +
          "0x0000000000000000000000000000000000000000 to disable the fast revoke path",
      );
      for (const bad of ["0x1234", "0x0"]) {
        const result = await runTask("operators:propose-guardian", {
          registry: registryAddress,
          guardian: bad,
          file,
          contracts,
        });
        expect(result.error?.message).to.equal(
          `--guardian: "${bad}" is not a valid address (expected 0x followed by 40 hex digits)`,
        );
      }
      const badChecksum = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6a65";
      const checksum = await runTask("operators:propose-guardian", {
        registry: registryAddress,
        guardian: badChecksum,
        file,
        contracts,
      });
      expect(checksum.error?.message).to.equal(
        `--guardian: "${badChecksum}" has a bad checksum; did you mean 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65? ` +
          "(check the address letter by letter before using it)",
      );
      expect(existsSync(file)).to.equal(false);
      expect(await ethers.provider.getBlockNumber()).to.equal(before);
    });
  });

  describe("operators:merge", function () {
    it("merges copies signed in parallel by two owners; the merged file executes", async function () {
      const { registry, registryAddress, operator, newOperator, dir, file, contracts } = await setup();
      await runTask("operators:propose", {
        registry: registryAddress,
        remove: operator.address,
        add: newOperator.address,
        file,
        contracts,
      });
      const [a, b, merged] = ["alice.json", "carol.json", "merged.json"].map((name) => path.join(dir, name));
      await copyFile(file, a);
      await copyFile(file, b);
      process.env.TEST_OWNER_A_KEY = OWNER_KEYS[0];
      process.env.TEST_OWNER_B_KEY = OWNER_KEYS[2];
      expect(
        (await runTask("operators:sign", { file: a, keyVar: "TEST_OWNER_A_KEY", contracts, yes: true })).success,
      ).to.equal(true);
      expect(
        (await runTask("operators:sign", { file: b, keyVar: "TEST_OWNER_B_KEY", contracts, yes: true })).success,
      ).to.equal(true);
      // Each copy alone is one signature short.
      const alone = await runTask("operators:execute", { file: a, account: "6", contracts });
      expect(alone.error?.message).to.match(/too few signatures: 1 of the 2 required/);

      const merge = await runTask("operators:merge", { out: merged, files: [a, b] });
      expect(merge.success, merge.error?.message).to.equal(true);
      expect(merge.output).to.contain(`Merged 2 files into ${merged}: 2 signature(s).`);
      const stored = JSON.parse(await readFile(merged, "utf8")) as { signatures: { signer: string }[] };
      expect(stored.signatures.map((signature) => signature.signer)).to.deep.equal(
        [OWNER_KEYS[0], OWNER_KEYS[2]].map((key) => new ethers.Wallet(key).address),
      );

      const execute = await runTask("operators:execute", { file: merged, account: "6", contracts });
      expect(execute.success, execute.error?.message).to.equal(true);
      expect(await registry.operators()).to.deep.equal([newOperator.address]);
    });

    it("may write over one of its inputs, but over no other existing file", async function () {
      const { registryAddress, operator, dir, file, contracts } = await setup();
      await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
      const other = path.join(dir, "other.json");
      await copyFile(file, other);
      const elsewhere = path.join(dir, "elsewhere.json");
      await writeFile(elsewhere, "keep me");
      const refused = await runTask("operators:merge", { out: elsewhere, files: [file, other] });
      expect(refused.error?.message).to.equal(
        `${elsewhere} already exists: choose another --out (or one of the files being merged)`,
      );
      expect(await readFile(elsewhere, "utf8")).to.equal("keep me");
      const inPlace = await runTask("operators:merge", { out: file, files: [file, other] });
      expect(inPlace.success, inPlace.error?.message).to.equal(true);
    });

    it("refuses copies of different proposals and writes nothing", async function () {
      const { registryAddress, operator, guardian, dir, file, contracts } = await setup();
      const guardianFile = path.join(dir, "guardian.json");
      const out = path.join(dir, "merged.json");
      await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
      await runTask("operators:propose-guardian", {
        registry: registryAddress,
        guardian: guardian.address,
        file: guardianFile,
        contracts,
      });
      const result = await runTask("operators:merge", { out, files: [file, guardianFile] });
      expect(result.success).to.equal(false);
      expect(result.error?.message).to.equal(
        `${guardianFile} is not a copy of the same Safe transaction as ${file}: the transaction data differs; ` +
          "only copies of one proposal can be merged",
      );
      expect(existsSync(out)).to.equal(false);
    });

    it("refuses a missing --out, a single file, a file given twice and an unreadable file", async function () {
      const { registryAddress, operator, dir, file, contracts } = await setup();
      await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
      const out = path.join(dir, "merged.json");
      const cases: [Record<string, unknown>, string][] = [
        [{ files: [file, file] }, "--out is required: where to write the merged proposal"],
        [{ out, files: [file] }, "give at least two proposal files to merge"],
        [{ out, files: [file, `${dir}/./proposal.json`] }, `${dir}/./proposal.json is given twice`],
        [
          { out, files: [file, path.join(dir, "missing.json")] },
          `cannot read proposal file ${path.join(dir, "missing.json")}`,
        ],
      ];
      for (const [args, message] of cases) {
        const result = await runTask("operators:merge", args);
        expect(result.error?.message).to.equal(message);
      }
      expect(existsSync(out)).to.equal(false);
    });
  });
});
