import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";

import { createProposal, executeProposal, signProposal } from "../../tasks/safe/lib/proposal.js";
import { openSafe } from "../../tasks/safe/lib/safe-account.js";
import { type TxBuilderBatch, txBuilderChecksum } from "../../tasks/safe/lib/tx-builder.js";
import { alice, bob, carol, ethers, networkHelpers, provider } from "./fixtures.js";
import { runTask, taskSetup } from "./task-runner.js";

/** The Transaction Builder's text form of an array argument, `[a,b]`, back to a list. */
function parseInputValue(type: string, value: string): unknown {
  if (!type.endsWith("[]")) return value;
  const inner = value.trim().replace(/^\[/, "").replace(/\]$/, "").trim();
  return inner === "" ? [] : inner.split(",").map((item) => item.trim());
}

/** Calldata from a batch transaction's method and input values, the way the Transaction Builder encodes it. */
function encodeFromMethod(transaction: TxBuilderBatch["transactions"][number]): string {
  const { contractMethod, contractInputsValues } = transaction;
  const fragment = ethers.FunctionFragment.from({
    type: "function",
    name: contractMethod.name,
    inputs: contractMethod.inputs,
    stateMutability: contractMethod.payable ? "payable" : "nonpayable",
  });
  const values = contractMethod.inputs.map((input) => parseInputValue(input.type, contractInputsValues[input.name]));
  return new ethers.Interface([fragment]).encodeFunctionData(fragment, values);
}

async function setup() {
  const fixture = await taskSetup();
  const batchFile = path.join(fixture.dir, "batch.json");
  const exported = await runTask("operators:propose", {
    registry: fixture.registryAddress,
    remove: fixture.operator.address,
    add: fixture.newOperator.address,
    file: batchFile,
    contracts: fixture.contracts,
    format: "tx-builder",
    json: true,
  });
  expect(exported.success, exported.error?.message).to.equal(true);
  const batch = JSON.parse(await readFile(batchFile, "utf8")) as TxBuilderBatch;
  return { ...fixture, batchFile, batch, exported };
}

describe("Safe{Wallet} Transaction Builder export", function () {
  it("computes the checksum of a batch that Safe{Wallet}'s Transaction Builder downloaded", function () {
    // A batch exported by Transaction Builder 1.18.2 (an ERC-20 approve on mainnet), with the checksum it wrote.
    const downloaded = {
      version: "1.0",
      chainId: "1",
      createdAt: 1761326849944,
      meta: {
        name: "Transactions Batch",
        description: "",
        txBuilderVersion: "1.18.2",
        createdFromSafeAddress: "0xA77DE01e157f9f57C7c4A326eeE9C4874D0598b6",
        createdFromOwnerAddress: "",
      },
      transactions: [
        {
          to: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
          value: "0",
          data: null,
          contractMethod: {
            inputs: [
              { internalType: "address", name: "spender", type: "address" },
              { internalType: "uint256", name: "value", type: "uint256" },
            ],
            name: "approve",
            payable: false,
          },
          contractInputsValues: { spender: "0x474e5Ded6b5D078163BFB8F6dBa355C3aA5478C8", value: "100000000000" },
        },
      ],
    };
    expect(txBuilderChecksum(downloaded as never)).to.equal(
      "0x8b5032f716845c8b08bab3d63dbd9ba92e056f3557793cd041e59b84e16aa989",
    );
    // The name is left out of the checksum (renaming a batch keeps it valid); anything else is covered.
    const renamed = { ...downloaded, meta: { ...downloaded.meta, name: "Rotation" } };
    expect(txBuilderChecksum(renamed as never)).to.equal(txBuilderChecksum(downloaded as never));
    const edited = { ...downloaded, chainId: "5" };
    expect(txBuilderChecksum(edited as never)).not.to.equal(txBuilderChecksum(downloaded as never));
  });

  it("operators:propose --format tx-builder writes the batch format's published fields, and no proposal", async function () {
    const { batch, batchFile, exported, safeAddress, registry, registryAddress, operator, newOperator, dir } =
      await setup();
    expect(Object.keys(batch)).to.deep.equal(["version", "chainId", "createdAt", "meta", "transactions"]);
    expect(batch.version).to.equal("1.0");
    expect(batch.chainId).to.equal("31337");
    expect(batch.createdAt)
      .to.be.a("number")
      .within(Date.now() - 60_000, Date.now());
    expect(Object.keys(batch.meta)).to.have.members([
      "name",
      "description",
      "txBuilderVersion",
      "createdFromSafeAddress",
      "createdFromOwnerAddress",
      "checksum",
    ]);
    expect(batch.meta.createdFromSafeAddress).to.equal(safeAddress);
    expect(batch.meta.description).to.equal(
      `remove operator(s) ${operator.address} and add operator(s) ${newOperator.address}, in one transaction`,
    );
    const { checksum, ...meta } = batch.meta;
    expect(checksum).to.equal(txBuilderChecksum({ ...batch, meta }));

    expect(batch.transactions).to.have.length(1);
    const [transaction] = batch.transactions;
    expect(Object.keys(transaction)).to.deep.equal(["to", "value", "data", "contractMethod", "contractInputsValues"]);
    expect(transaction).to.deep.include({ to: registryAddress, value: "0" });
    const fragment = registry.interface.getFunction("rotateOperators")!;
    expect(transaction.contractMethod).to.deep.equal({
      inputs: fragment.inputs.map((input) => ({ internalType: input.type, name: input.name, type: input.type })),
      name: "rotateOperators",
      payable: false,
    });
    expect(transaction.contractInputsValues).to.deep.equal({
      remove: `[${operator.address}]`,
      add: `[${newOperator.address}]`,
    });
    // The raw data and the method with its values say the same thing.
    expect(transaction.data).to.equal(
      registry.interface.encodeFunctionData("rotateOperators", [[operator.address], [newOperator.address]]),
    );
    expect(encodeFromMethod(transaction)).to.equal(transaction.data);

    expect(JSON.parse(exported.stdout)).to.deep.equal({ file: batchFile, batch });
    expect(existsSync(path.join(dir, "proposal.json"))).to.equal(false);
  });

  it("executing the exported transactions through the Safe gives the same result as our own proposal", async function () {
    const {
      batch,
      contractNetworks,
      registryAddress,
      registry,
      billing,
      safeAddress,
      operator,
      newOperator,
      executor,
    } = await setup();
    const context = { provider, contractNetworks };
    const before = await networkHelpers.takeSnapshot();

    // Our own flow: proposal file, two owners sign, execute.
    let proposal = await createProposal({
      ...context,
      registryAddress,
      remove: [operator.address],
      add: [newOperator.address],
    });
    for (const signer of [alice, bob]) proposal = await signProposal({ ...context, proposal, signer });
    await executeProposal({ ...context, proposal, executor: { nodeAccount: executor.address } });
    const ours = { operators: await registry.operators(), isOperator: await billing.isOperator(newOperator.address) };
    expect(ours).to.deep.equal({ operators: [newOperator.address], isOperator: true });
    await before.restore();

    // What Safe{Wallet} does with the imported batch: one Safe transaction made of its calls, signed by two owners.
    const transactions = batch.transactions.map((transaction) => ({
      to: transaction.to,
      value: transaction.value,
      data: encodeFromMethod(transaction),
    }));
    const [bySafe, byBob, byCarol] = await Promise.all(
      [{ nodeAccount: executor.address }, bob, carol].map((signer) => openSafe({ ...context, safeAddress, signer })),
    );
    const created = await byBob.createTransaction({ transactions });
    const signed = await byCarol.signTransaction(await byBob.signTransaction(created));
    await (
      await bySafe.executeTransaction(signed)
    ).transactionResponse;
    expect({
      operators: await registry.operators(),
      isOperator: await billing.isOperator(newOperator.address),
    }).to.deep.equal(ours);
    expect(await billing.isOperator(operator.address)).to.equal(false);
  });

  describe("operators:export", function () {
    it("exports a signed proposal file as the same batch (the owner recorded), never over an existing file", async function () {
      const { registryAddress, operator, newOperator, file, contracts, dir, owners } = await taskSetup();
      expect(
        (
          await runTask("operators:propose", {
            registry: registryAddress,
            remove: operator.address,
            add: newOperator.address,
            file,
            contracts,
          })
        ).success,
      ).to.equal(true);
      const out = path.join(dir, "exported.json");
      const result = await runTask("operators:export", { file, out, owner: owners[0] });
      expect(result.success, result.error?.message).to.equal(true);
      const batch = JSON.parse(await readFile(out, "utf8")) as TxBuilderBatch;
      expect(batch.meta.createdFromOwnerAddress).to.equal(owners[0]);
      const proposal = JSON.parse(await readFile(file, "utf8")) as { safeTransaction: { data: string } };
      expect(batch.transactions[0].data).to.equal(proposal.safeTransaction.data);
      expect(result.output).to.contain(
        `Transaction Builder batch written to ${out} (checksum ${batch.meta.checksum}).`,
      );

      await writeFile(out, "keep me");
      const again = await runTask("operators:export", { file, out });
      expect(again.error?.message).to.equal(`${out} already exists: choose another --out or delete it`);
      expect(await readFile(out, "utf8")).to.equal("keep me");
    });

    it("refuses a missing --file or --out, a bad --owner, a tampered proposal, and an unknown --format", async function () {
      const { registryAddress, operator, outsider, file, contracts, dir } = await taskSetup();
      await runTask("operators:propose", { registry: registryAddress, remove: operator.address, file, contracts });
      const out = path.join(dir, "out.json");
      const proposal = JSON.parse(await readFile(file, "utf8")) as { summary: { remove: string[] } };
      const tampered = path.join(dir, "tampered.json");
      await writeFile(
        tampered,
        JSON.stringify({ ...proposal, summary: { ...proposal.summary, remove: [outsider.address] } }),
      );
      const cases: [string, Record<string, unknown>, string][] = [
        ["operators:export", { out }, "--file is required: the proposal JSON file"],
        ["operators:export", { file }, "--out is required: where to write the Transaction Builder batch JSON"],
        [
          "operators:export",
          { file, out, owner: "0x1234" },
          '--owner: "0x1234" is not a valid address (expected 0x followed by 40 hex digits)',
        ],
        [
          "operators:export",
          { file: tampered, out },
          "tampered proposal: the summary does not match the operators in the transaction data",
        ],
        [
          "operators:propose",
          { registry: registryAddress, remove: operator.address, file: out, contracts, format: "csv" },
          '--format must be "proposal" or "tx-builder", not "csv"',
        ],
      ];
      for (const [task, args, message] of cases) {
        const result = await runTask(task, args);
        expect(result.error?.message, task).to.equal(message);
      }
      expect(existsSync(out)).to.equal(false);
    });
  });
});
