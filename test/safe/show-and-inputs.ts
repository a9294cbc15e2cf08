import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";

import { createGuardianProposal, executeProposal, signProposal } from "../../tasks/safe/lib/proposal.js";
import { computeSafeTxHashes } from "../../tasks/safe/lib/safe-tx-hash.js";
import { alice, bob, ethers, expectRejectedWithoutTransaction, OWNER_KEYS, provider } from "./fixtures.js";
import { runTask, taskSetup } from "./task-runner.js";

/** A proposal replacing the fixture's operator, written to `file`. */
async function proposed() {
  const fixture = await taskSetup();
  const { registryAddress, operator, newOperator, file, contracts } = fixture;
  const result = await runTask("operators:propose", {
    registry: registryAddress,
    remove: operator.address,
    add: newOperator.address,
    file,
    contracts,
  });
  expect(result.success, result.error?.message).to.equal(true);
  return fixture;
}

describe("Safe tasks: show, --json and bad input", function () {
  afterEach(function () {
    delete process.env.TEST_OWNER_KEY;
  });

  describe("operators:show", function () {
    it("prints the decoded call, operators and guardian, the Safe, signers and the three hashes; sends and writes nothing", async function () {
      const { file, contracts, safeAddress, registryAddress, operator, newOperator, owners } = await proposed();
      process.env.TEST_OWNER_KEY = OWNER_KEYS[1];
      expect(
        (await runTask("operators:sign", { file, keyVar: "TEST_OWNER_KEY", contracts, yes: true })).success,
      ).to.equal(true);
      const text = await readFile(file, "utf8");
      const stored = JSON.parse(text) as { safeTransaction: Parameters<typeof computeSafeTxHashes>[2] };
      const hashes = computeSafeTxHashes(31337n, safeAddress, stored.safeTransaction);
      const before = await ethers.provider.getBlockNumber();

      const shown = await runTask("operators:show", { proposal: file });

      expect(shown.success, shown.error?.message).to.equal(true);
      expect(shown.output.split("\n")).to.deep.equal([
        "Safe transaction on chain 31337",
        `  Safe:       ${safeAddress} (Safe 1.5.0, 2 of 3 owners)`,
        `  owners:     ${owners.join(", ")}`,
        "  nonce:      0 (the Safe is at nonce 0)",
        `  registry:   ${registryAddress}`,
        `  call 1:     ${registryAddress}.rotateOperators(address[],address[]), value 0, operation CALL`,
        `                remove: [${operator.address}]`,
        `                add: [${newOperator.address}]`,
        `  operators before: ${operator.address}`,
        `  operators after:  ${newOperator.address}`,
        "  guardian:   none (unchanged)",
        `  signatures: 1 of 2 (${owners[1]}); 1 more needed`,
        "Hashes your device must show (computed here; protocol-kit and the Safe contract (domainSeparator, " +
          "getTransactionHash) agree):",
        `  domain hash:  ${hashes.domainHash}`,
        `  message hash: ${hashes.messageHash}`,
        `  safeTxHash:   ${hashes.safeTxHash}`,
      ]);
      expect(await ethers.provider.getBlockNumber()).to.equal(before);
      expect(await readFile(file, "utf8")).to.equal(text);
    });

    it("--json prints one document with the same facts, and says why a proposal can no longer be used", async function () {
      const { file, contracts, safeAddress, operator, newOperator, owners } = await proposed();
      process.env.TEST_OWNER_KEY = OWNER_KEYS[0];
      await runTask("operators:sign", { file, keyVar: "TEST_OWNER_KEY", contracts, yes: true });
      process.env.TEST_OWNER_KEY = OWNER_KEYS[2];
      await runTask("operators:sign", { file, keyVar: "TEST_OWNER_KEY", contracts, yes: true });

      const ready = JSON.parse((await runTask("operators:show", { proposal: file, json: true })).stdout) as Record<
        string,
        unknown
      >;
      expect(ready).to.deep.include({
        file,
        chainId: "31337",
        safeNonce: 0,
        operators: { before: [operator.address], after: [newOperator.address] },
        guardian: { before: ethers.ZeroAddress, after: ethers.ZeroAddress },
        signatures: [
          { signer: owners[0], isOwner: true },
          { signer: owners[2], isOwner: true },
        ],
        missingSignatures: 0,
      });
      expect(ready.safe).to.deep.include({ address: safeAddress, threshold: 2, nonce: 0, version: "1.5.0", owners });
      expect(ready).not.to.have.property("problem");

      expect((await runTask("operators:execute", { file, account: "6", contracts })).success).to.equal(true);
      const used = JSON.parse((await runTask("operators:show", { proposal: file, json: true })).stdout) as {
        problem: string;
        operators: { before: string[] };
      };
      expect(used.problem).to.equal(
        "Safe nonce 0 was already used (the Safe is at nonce 1): this proposal was executed or replaced; create a new one",
      );
      expect(used.operators.before).to.deep.equal([newOperator.address]);
      // And signing it is refused with that reason.
      process.env.TEST_OWNER_KEY = OWNER_KEYS[1];
      const late = await runTask("operators:sign", { file, keyVar: "TEST_OWNER_KEY", contracts, yes: true });
      expect(late.error?.message).to.equal(used.problem);
    });

    it("refuses a missing or tampered file", async function () {
      const { file, dir, outsider } = await proposed();
      const missing = path.join(dir, "missing.json");
      expect((await runTask("operators:show", { proposal: missing })).error?.message).to.equal(
        `cannot read proposal file ${missing}`,
      );
      const proposal = JSON.parse(await readFile(file, "utf8")) as { safeTransaction: { nonce: number } };
      const tampered = path.join(dir, "tampered.json");
      await writeFile(
        tampered,
        JSON.stringify({ ...proposal, safeTransaction: { ...proposal.safeTransaction, to: outsider.address } }),
      );
      expect((await runTask("operators:show", { proposal: tampered })).error?.message).to.equal(
        `tampered proposal: the transaction targets ${outsider.address}, not the registry ${JSON.parse(await readFile(file, "utf8")).registry}`,
      );
    });
  });

  describe("--json", function () {
    it("prints a failure as { error } on stdout, the human text on stderr", async function () {
      const { registryAddress, file } = await taskSetup();
      const result = await runTask("operators:propose", { registry: registryAddress, add: "0x12", file, json: true });
      expect(result.success).to.equal(false);
      expect(JSON.parse(result.stdout)).to.deep.equal({
        error: '--add: "0x12" is not a valid address (expected 0x followed by 40 hex digits)',
      });
    });

    it("operators:list prints the registry's state", async function () {
      const { registryAddress, safeAddress, operator } = await taskSetup();
      const result = await runTask("operators:list", { registry: registryAddress, json: true });
      expect(JSON.parse(result.stdout)).to.deep.equal({
        registry: registryAddress,
        owner: safeAddress,
        guardian: ethers.ZeroAddress,
        operators: [operator.address],
      });
    });
  });

  describe("operators:sign inputs", function () {
    it("marks signing with a raw key as for tests and CI only, and never prints the key", async function () {
      const { file, contracts } = await proposed();
      process.env.TEST_OWNER_KEY = OWNER_KEYS[0];
      const withKey = await runTask("operators:sign", { file, keyVar: "TEST_OWNER_KEY", contracts, yes: true });
      expect(withKey.output).to.contain(
        "Warning: signing with the raw private key in TEST_OWNER_KEY. This is for tests",
      );
      expect(withKey.output).not.to.contain(OWNER_KEYS[0].slice(2));
    });

    it("refuses a bad --account, both or neither of --account and --key-var, and writes nothing", async function () {
      const { file, contracts, outsider } = await proposed();
      const original = await readFile(file, "utf8");
      const accounts = (await provider.request({ method: "eth_accounts" })) as string[];
      const stranger = ethers.Wallet.createRandom().address;
      process.env.TEST_OWNER_KEY = OWNER_KEYS[0];
      const cases: [Record<string, unknown>, string | RegExp][] = [
        [
          {},
          "give exactly one of --account <index|address> (an account of the network: node, Ledger or remote signer) " +
            "or --key-var NAME (a raw private key: tests and CI only)",
        ],
        [{ account: "1", keyVar: "TEST_OWNER_KEY" }, /^give exactly one of --account <index\|address>/],
        [{ account: "99" }, `--account 99: the network has ${accounts.length} accounts (0 to ${accounts.length - 1})`],
        [{ account: stranger }, new RegExp(`^--account ${stranger} is not an account of this network \\(it has 0x`)],
        [
          { account: outsider.address.toLowerCase().replace("0x", "0X") },
          /^--account: "0X[0-9a-f]{40}" is not a valid address/,
        ],
        [{ account: outsider.address }, new RegExp(`^${outsider.address} is not an owner of Safe`)],
        [{ keyVar: "TEST_UNSET_KEY" }, /^configuration variable TEST_UNSET_KEY is not set/],
      ];
      for (const [args, message] of cases) {
        const result = await runTask("operators:sign", { file, contracts, yes: true, ...args });
        expect(result.success, JSON.stringify(args)).to.equal(false);
        if (typeof message === "string") expect(result.error?.message).to.equal(message);
        else expect(result.error?.message).to.match(message);
      }
      expect(await readFile(file, "utf8")).to.equal(original);
    });
  });

  describe("operators:propose refuses admins as operators before sending", function () {
    it("refuses the owner Safe itself", async function () {
      const { registryAddress, safeAddress, file, contracts } = await taskSetup();
      const before = await ethers.provider.getBlockNumber();
      const result = await runTask("operators:propose", {
        registry: registryAddress,
        add: safeAddress,
        file,
        contracts,
      });
      expect(result.error?.message).to.equal(
        `cannot add ${safeAddress} as an operator: it is the Safe that owns the registry, and an admin can never be an ` +
          "operator (the registry refuses it with RegistryAdminAsOperator); use a separate hot key",
      );
      expect(existsSync(file)).to.equal(false);
      expect(await ethers.provider.getBlockNumber()).to.equal(before);
    });

    it("refuses a pending owner of the registry", async function () {
      const { registryAddress, registry, safeAddress, outsider, file, contracts } = await taskSetup();
      // The Safe starts handing the registry over (impersonated here: the tasks have no ownership proposals).
      await ethers.provider.send("hardhat_setBalance", [safeAddress, "0xde0b6b3a7640000"]);
      const safe = await ethers.getImpersonatedSigner(safeAddress);
      await (await registry.connect(safe).transferOwnership(outsider.address)).wait();
      const before = await ethers.provider.getBlockNumber();
      const result = await runTask("operators:propose", {
        registry: registryAddress,
        add: outsider.address,
        file,
        contracts,
      });
      expect(result.error?.message).to.equal(
        `cannot add ${outsider.address} as an operator: it is the registry's pending owner, and an admin can never be ` +
          "an operator (the registry refuses it with RegistryAdminAsOperator); use a separate hot key",
      );
      expect(existsSync(file)).to.equal(false);
      expect(await ethers.provider.getBlockNumber()).to.equal(before);
    });

    it("refuses the guardian (and the registry refuses it too)", async function () {
      const fixture = await taskSetup();
      const { registryAddress, registry, guardian, executor, contractNetworks, file, contracts } = fixture;
      const context = { provider, contractNetworks };
      // A rotation adding the future guardian, signed while it is still allowed...
      const early = await runTask("operators:propose", {
        registry: registryAddress,
        add: guardian.address,
        file,
        contracts,
      });
      expect(early.success, early.error?.message).to.equal(true);
      // ...then the Safe makes that account the guardian (Safe nonce 0 used by the guardian change instead).
      let change = await createGuardianProposal({ ...context, registryAddress, guardian: guardian.address });
      for (const signer of [alice, bob]) change = await signProposal({ ...context, proposal: change, signer });
      await executeProposal({ ...context, proposal: change, executor: { nodeAccount: executor.address } });
      expect(await registry.guardian()).to.equal(guardian.address);

      const message =
        `cannot add ${guardian.address} as an operator: it is the registry's guardian, and an admin can never be an ` +
        "operator (the registry refuses it with RegistryAdminAsOperator); use a separate hot key";
      const refused = await runTask("operators:propose", {
        registry: registryAddress,
        add: guardian.address,
        file: path.join(fixture.dir, "again.json"),
        contracts,
      });
      expect(refused.error?.message).to.equal(message);
      // The contract refuses it too.
      await expectRejectedWithoutTransaction(async () => {
        const impersonated = await ethers.getImpersonatedSigner(fixture.safeAddress);
        await ethers.provider.send("hardhat_setBalance", [fixture.safeAddress, "0xde0b6b3a7640000"]);
        await registry.connect(impersonated).rotateOperators.staticCall([], [guardian.address]);
      }, /RegistryAdminAsOperator/);
    });
  });

  describe("safe:deploy-local", function () {
    it("never overwrites a contracts file whose contracts are gone from the chain, unless --replace", async function () {
      const { dir } = await taskSetup();
      const contracts = path.join(dir, "stale.json");
      const stale = Object.fromEntries(
        [
          "safeSingletonAddress",
          "safeProxyFactoryAddress",
          "multiSendAddress",
          "multiSendCallOnlyAddress",
          "fallbackHandlerAddress",
          "signMessageLibAddress",
          "createCallAddress",
          "simulateTxAccessorAddress",
        ].map((name, index) => [name, ethers.getAddress(`0x${(index + 1).toString(16).padStart(40, "a")}`)]),
      );
      const text = `${JSON.stringify({ 31337: stale }, null, 2)}\n`;
      await writeFile(contracts, text);
      const before = await ethers.provider.getBlockNumber();
      const refused = await runTask("safe:deploy-local", { contracts });
      expect(refused.error?.message).to.match(
        new RegExp(
          `^${contracts.replaceAll(/[.*+?^${}()|[\]\\/]/g, "\\$&")} lists Safe contracts for chain 31337 that are not on chain \\(SafeL2, `,
        ),
      );
      expect(refused.error?.message).to.contain("rerun with --replace to deploy new ones and overwrite the file");
      expect(await readFile(contracts, "utf8")).to.equal(text);
      expect(await ethers.provider.getBlockNumber()).to.equal(before);

      const replaced = await runTask("safe:deploy-local", { contracts, replace: true, json: true });
      expect(replaced.success, replaced.error?.message).to.equal(true);
      const deployment = JSON.parse(replaced.stdout) as { contractNetworks: Record<string, unknown> };
      expect(JSON.parse(await readFile(contracts, "utf8"))).to.deep.equal(deployment.contractNetworks);
    });

    it("refuses owners and thresholds that cannot form a Safe before deploying anything", async function () {
      const { dir, owners } = await taskSetup();
      const contracts = path.join(dir, "none.json");
      const before = await ethers.provider.getBlockNumber();
      const cases: [Record<string, unknown>, string][] = [
        [{ threshold: 4 }, "threshold must be between 1 and the number of owners (3), got 4"],
        [{ threshold: 0 }, "threshold must be between 1 and the number of owners (3), got 0"],
        [{ owners: `${owners[0]},${owners[0]}` }, `--owners: ${owners[0]} is listed twice`],
      ];
      for (const [args, message] of cases) {
        expect((await runTask("safe:deploy-local", { contracts, ...args })).error?.message).to.equal(message);
      }
      expect(existsSync(contracts)).to.equal(false);
      expect(await ethers.provider.getBlockNumber()).to.equal(before);
    });
  });
});
