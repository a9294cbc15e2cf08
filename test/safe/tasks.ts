import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import hre from "hardhat";

import { OWNER_KEYS, ethers, networkHelpers, safeOwnedRegistryFixture } from "./fixtures.js";

type TaskResult = { success: boolean; value?: unknown; error?: Error };

/** Runs a task as the CLI would, with its output silenced. */
async function runTask(name: string, args: Record<string, unknown>): Promise<TaskResult> {
  const log = console.log;
  const error = console.error;
  console.log = () => {};
  console.error = () => {};
  try {
    return (await hre.tasks.getTask(name).run(args)) as TaskResult;
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function setup() {
  const fixture = await networkHelpers.loadFixture(safeOwnedRegistryFixture);
  const dir = await mkdtemp(path.join(tmpdir(), "safe-tasks-"));
  const contracts = path.join(dir, "contract-networks.json");
  await writeFile(contracts, JSON.stringify(fixture.contractNetworks));
  return { ...fixture, file: path.join(dir, "proposal.json"), contracts };
}

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
      const sign = await runTask("operators:sign", { file, keyVar, contracts });
      expect(sign.success, sign.error?.message).to.equal(true);
    }
    const stored = JSON.parse(await readFile(file, "utf8")) as { signatures: unknown[] };
    expect(stored.signatures).to.have.length(2);

    const execute = await runTask("operators:execute", { file, account: 6, contracts });
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
    const result = await runTask("operators:sign", { file, keyVar: "TEST_OWNER_A_KEY", contracts });
    expect(result.success).to.equal(false);
    expect(result.error?.message).to.match(/is not an owner of Safe/);
    expect(result.error?.message).not.to.contain(ethers.id("not an owner").slice(2));
  });

  it("refuses to execute with too few signatures", async function () {
    const { registry, registryAddress, operator, file, contracts } = await setup();
    await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
    process.env.TEST_OWNER_A_KEY = OWNER_KEYS[1];
    expect((await runTask("operators:sign", { file, keyVar: "TEST_OWNER_A_KEY", contracts })).success).to.equal(true);
    const result = await runTask("operators:execute", { file, account: 6, contracts });
    expect(result.error?.message).to.match(/too few signatures: 1 of the 2 required/);
    expect(await registry.operators()).to.deep.equal([operator.address]);
  });

  it("lets only the guardian revoke directly", async function () {
    const { registryAddress, operator } = await setup();
    const result = await runTask("operators:revoke", {
      registry: registryAddress,
      remove: operator.address,
      account: 7,
    });
    expect(result.error?.message).to.match(/is not the registry's guardian \(none is set\)/);
  });
});
