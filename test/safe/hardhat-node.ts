import { copyFile, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { ethers } from "ethers";
import hre from "hardhat";

import { computeSafeTxHashes } from "../../tasks/safe/lib/safe-tx-hash.js";
import { type HardhatNode, hardhatCli, hardhatCliOnTerminal, startHardhatNode } from "./cli.js";

/** The JSON a `--json` task printed, after checking that it succeeded. */
function json<T>(result: { code: number | null; stdout: string; stderr: string }): T {
  expect(result.code, `${result.stderr}\n${result.stdout}`).to.equal(0);
  return JSON.parse(result.stdout) as T;
}

describe("Safe tasks against `hardhat node`, each owner in a process of their own", function () {
  this.timeout(180_000);
  let node: HardhatNode;
  let provider: ethers.JsonRpcProvider;
  let accounts: string[];
  let dir: string;
  let contracts: string;
  let registryAddress: string;
  let billing: ethers.Contract;

  before(async function () {
    node = await startHardhatNode();
    provider = new ethers.JsonRpcProvider(node.url, undefined, { cacheTimeout: -1 });
    accounts = ((await provider.send("eth_accounts", [])) as string[]).map((a) => ethers.getAddress(a));
    dir = await mkdtemp(path.join(tmpdir(), "safe-node-"));
    contracts = path.join(dir, "safe-contracts.json");
  });

  after(async function () {
    provider?.destroy();
    await node?.stop();
  });

  it("deploys the Safe (2 of node accounts 1, 2, 3) once: a second run reuses it and leaves the file alone", async function () {
    const first = json<{ safeAddress: string; owners: string[]; contractsReused: boolean }>(
      await hardhatCli(node.url, ["safe:deploy-local", "--contracts", contracts, "--json"]),
    );
    expect(first.owners).to.deep.equal(accounts.slice(1, 4));
    expect(first.contractsReused).to.equal(false);
    const written = await readFile(contracts, "utf8");
    const again = json<{ safeAddress: string; contractsReused: boolean; safeReused: boolean }>(
      await hardhatCli(node.url, ["safe:deploy-local", "--contracts", contracts, "--json"]),
    );
    expect(again).to.include({ safeAddress: first.safeAddress, contractsReused: true, safeReused: true });
    expect(await readFile(contracts, "utf8")).to.equal(written);

    // The billing contract (and the registry it creates) owned by that Safe, with node account 4 as operator.
    const artifact = await hre.artifacts.readArtifact("RecurringBilling");
    const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, await provider.getSigner(0));
    const deployed = await factory.deploy(first.safeAddress, [accounts[4]], ethers.ZeroAddress, 7n * 24n * 3600n);
    await deployed.waitForDeployment();
    billing = deployed as ethers.Contract;
    registryAddress = (await billing.registry()) as string;
  });

  it("rotates an operator: propose, two owners sign with eth_signTypedData_v4 in parallel processes, merge, execute", async function () {
    const file = path.join(dir, "rotation.json");
    const proposed = json<{ file: string; proposal: { safeTxHash: string; safe: string } }>(
      await hardhatCli(node.url, [
        "operators:propose",
        "--registry",
        registryAddress,
        "--remove",
        accounts[4],
        "--add",
        accounts[5],
        "--file",
        file,
        "--contracts",
        contracts,
        "--json",
      ]),
    );
    expect(proposed.file).to.equal(file);
    const [byFirst, bySecond] = [path.join(dir, "owner1.json"), path.join(dir, "owner2.json")];
    await copyFile(file, byFirst);
    await copyFile(file, bySecond);

    // Owner 1 by index, owner 2 by address: each process asks the node to sign, the key never leaves it.
    const signed = await Promise.all([
      hardhatCli(node.url, ["operators:sign", "--file", byFirst, "--account", "1", "--yes", "--contracts", contracts]),
      hardhatCli(node.url, [
        "operators:sign",
        "--file",
        bySecond,
        "--account",
        accounts[2],
        "--yes",
        "--contracts",
        contracts,
        "--json",
      ]),
    ]);
    expect(signed[0].code, signed[0].stderr).to.equal(0);
    expect(signed[0].stdout).to.contain(`Signed by ${accounts[1]}; 1 signature(s) in ${byFirst}.`);
    expect(json<{ signer: string }>(signed[1]).signer).to.equal(accounts[2]);
    for (const [copy, owner] of [
      [byFirst, accounts[1]],
      [bySecond, accounts[2]],
    ]) {
      const { signatures } = JSON.parse(await readFile(copy, "utf8")) as {
        signatures: { signer: string; data: string }[];
      };
      expect(signatures.map((signature) => signature.signer)).to.deep.equal([owner]);
      expect(ethers.recoverAddress(proposed.proposal.safeTxHash, signatures[0].data)).to.equal(owner);
    }

    const merged = path.join(dir, "merged.json");
    expect((await hardhatCli(node.url, ["operators:merge", "--out", merged, byFirst, bySecond])).code).to.equal(0);

    const shown = json<{
      operators: { before: string[]; after: string[] };
      missingSignatures: number;
      hashes: { domainHash: string; messageHash: string; safeTxHash: string };
    }>(await hardhatCli(node.url, ["operators:show", merged, "--json"]));
    expect(shown.operators).to.deep.equal({ before: [accounts[4]], after: [accounts[5]] });
    expect(shown.missingSignatures).to.equal(0);
    const { safeTransaction } = JSON.parse(await readFile(merged, "utf8")) as {
      safeTransaction: Parameters<typeof computeSafeTxHashes>[2];
    };
    expect(shown.hashes).to.deep.equal(computeSafeTxHashes(31337n, proposed.proposal.safe, safeTransaction));

    const executed = await hardhatCli(node.url, [
      "operators:execute",
      "--file",
      merged,
      "--account",
      "6",
      "--contracts",
      contracts,
    ]);
    expect(executed.code, executed.stderr).to.equal(0);
    const registry = new ethers.Contract(registryAddress, ["function operators() view returns (address[])"], provider);
    expect(await registry.operators()).to.deep.equal([accounts[5]]);
    expect(await billing.isOperator(accounts[4])).to.equal(false);
    expect(await billing.isOperator(accounts[5])).to.equal(true);
  });

  describe("confirmation before signing", function () {
    let file: string;
    let original: string;

    before(async function () {
      file = path.join(dir, "confirm.json");
      const proposed = await hardhatCli(node.url, [
        "operators:propose",
        "--registry",
        registryAddress,
        "--add",
        accounts[7],
        "--file",
        file,
        "--contracts",
        contracts,
      ]);
      expect(proposed.code, proposed.stderr).to.equal(0);
      original = await readFile(file, "utf8");
    });

    it("on a terminal, answering no signs nothing and leaves the file as it was", async function () {
      const result = await hardhatCliOnTerminal(
        node.url,
        ["operators:sign", "--file", file, "--account", "1", "--contracts", contracts],
        "n\r",
      );
      expect(result.code).to.equal(1);
      const safeTxHash = (JSON.parse(original) as { safeTxHash: string }).safeTxHash;
      expect(result.stdout).to.contain(`safeTxHash:   ${safeTxHash}`);
      expect(result.stdout).to.contain(`Sign safeTxHash ${safeTxHash} as ${accounts[1]}?`);
      expect(result.stdout).to.contain("Error: not signed: you did not confirm; nothing was written");
      expect(await readFile(file, "utf8")).to.equal(original);
    });

    it("without a terminal and without --yes, refuses and writes nothing", async function () {
      const result = await hardhatCli(node.url, ["operators:sign", "--file", file, "--account", "1"], "y\n");
      expect(result.code).to.equal(1);
      expect(result.stderr).to.contain(
        "Error: not signing: no terminal to confirm on; check the proposal with operators:show, then rerun with --yes",
      );
      expect(await readFile(file, "utf8")).to.equal(original);
    });

    it("on a terminal, answering yes signs", async function () {
      const result = await hardhatCliOnTerminal(
        node.url,
        ["operators:sign", "--file", file, "--account", "3", "--contracts", contracts],
        "y\r",
      );
      expect(result.code, result.stdout).to.equal(0);
      const { signatures } = JSON.parse(await readFile(file, "utf8")) as { signatures: { signer: string }[] };
      expect(signatures.map((signature) => signature.signer)).to.deep.equal([accounts[3]]);
    });
  });
});
