import { expect } from "chai";

import { revokeOperators } from "../../tasks/safe/lib/operators.js";
import { computeSafeTxHash, parseProposal, type Proposal } from "../../tasks/safe/lib/proposal-file.js";
import {
  createGuardianProposal,
  createProposal,
  executeProposal,
  signProposal,
} from "../../tasks/safe/lib/proposal.js";
import { describeGuardianChange } from "../../tasks/safe/lib/registry.js";
import { openSafe } from "../../tasks/safe/lib/safe-account.js";
import {
  alice,
  bob,
  carol,
  ethers,
  expectRejectedWithoutTransaction,
  provider,
  safeProposalSetup,
} from "./fixtures.js";

async function setup() {
  const { fixture, context, executor } = await safeProposalSetup();
  const proposeGuardian = (guardian: string) =>
    createGuardianProposal({ ...context, registryAddress: fixture.registryAddress, guardian });
  const signBy = async <ProposalT extends Proposal>(proposal: ProposalT, ...signers: { privateKey: string }[]) => {
    let signed = proposal;
    for (const signer of signers) signed = await signProposal({ ...context, proposal: signed, signer });
    return signed;
  };
  /** Proposes, has alice and bob sign, and executes: the whole Safe flow. */
  const setGuardian = async (guardian: string) =>
    executeProposal({ ...context, proposal: await signBy(await proposeGuardian(guardian), alice, bob), executor });
  return { ...fixture, context, executor, proposeGuardian, signBy, setGuardian };
}

describe("Safe guardian proposals", function () {
  describe("createGuardianProposal", function () {
    it("records the current guardian, the new one and a setGuardian call to the registry", async function () {
      const { proposeGuardian, registry, registryAddress, safeAddress, guardian } = await setup();
      const proposal = await proposeGuardian(guardian.address);
      expect(proposal.summary.action).to.equal("setGuardian");
      expect(proposal.summary.previousGuardian).to.equal(ethers.ZeroAddress);
      expect(proposal.summary.guardian).to.equal(guardian.address);
      expect(proposal.summary.description).to.equal(
        `set guardian ${guardian.address} (none before): it may remove operators at once, never add them`,
      );
      expect(proposal.safeTransaction.to).to.equal(registryAddress);
      expect(proposal.safeTransaction.data).to.equal(
        registry.interface.encodeFunctionData("setGuardian", [guardian.address]),
      );
      expect(proposal.safeTxHash).to.equal(computeSafeTxHash(31337n, safeAddress, proposal.safeTransaction));
      expect(proposal.signatures).to.deep.equal([]);
    });

    it("says that the zero address disables the fast path", async function () {
      const { proposeGuardian, setGuardian, guardian } = await setup();
      await setGuardian(guardian.address);
      const proposal = await proposeGuardian(ethers.ZeroAddress);
      expect(proposal.summary.previousGuardian).to.equal(guardian.address);
      expect(proposal.summary.description).to.equal(
        `remove guardian ${guardian.address}: the zero address disables the fast revoke path ` +
          "(only the Safe can remove operators)",
      );
    });

    it("rejects a change that changes nothing", async function () {
      const { proposeGuardian, setGuardian, guardian } = await setup();
      await expectRejectedWithoutTransaction(
        () => proposeGuardian(ethers.ZeroAddress),
        /^nothing to do: the registry has no guardian already$/,
      );
      await setGuardian(guardian.address);
      await expectRejectedWithoutTransaction(
        () => proposeGuardian(guardian.address),
        new RegExp(`^nothing to do: ${guardian.address} is already the guardian$`),
      );
    });

    it("rejects an operator as guardian", async function () {
      const { proposeGuardian, operator } = await setup();
      await expectRejectedWithoutTransaction(
        () => proposeGuardian(operator.address),
        new RegExp(`the new guardian ${operator.address} is an operator: a leaked operator key could then revoke`),
      );
    });

    it("rejects the owner Safe as guardian", async function () {
      const { proposeGuardian, safeAddress } = await setup();
      await expectRejectedWithoutTransaction(
        () => proposeGuardian(safeAddress),
        new RegExp(`the new guardian ${safeAddress} is the registry's owner, which can already revoke`),
      );
    });
  });

  describe("sign and execute", function () {
    it("sets the guardian in ONE transaction signed by 2 of 3 owners; the guardian can then revoke", async function () {
      const { proposeGuardian, signBy, context, executor, registry, registryAddress, guardian, operator } =
        await setup();
      const signed = await signBy(await proposeGuardian(guardian.address), alice, carol);
      const blockBefore = await ethers.provider.getBlockNumber();

      const result = await executeProposal({ ...context, proposal: signed, executor });

      expect(result.blockNumber).to.equal(blockBefore + 1);
      expect((await ethers.provider.getBlock(result.blockNumber))?.transactions).to.deep.equal([
        result.transactionHash,
      ]);
      const receipt = await ethers.provider.getTransactionReceipt(result.transactionHash);
      const events = receipt!.logs
        .map((log) => registry.interface.parseLog(log))
        .filter((parsed) => parsed !== null)
        .map((parsed) => `${parsed.name}:${parsed.args.join(",")}`);
      expect(events).to.deep.equal([`GuardianChanged:${ethers.ZeroAddress},${guardian.address}`]);
      expect(await registry.guardian()).to.equal(guardian.address);

      await revokeOperators({
        provider,
        registryAddress,
        accounts: [operator.address],
        guardian: { nodeAccount: guardian.address },
      });
      expect(await registry.operators()).to.deep.equal([]);
    });

    it("disables the fast path with the zero address", async function () {
      const { proposeGuardian, signBy, context, executor, setGuardian, registry, registryAddress, guardian, operator } =
        await setup();
      await setGuardian(guardian.address);
      const signed = await signBy(await proposeGuardian(ethers.ZeroAddress), bob, carol);
      await executeProposal({ ...context, proposal: signed, executor });
      expect(await registry.guardian()).to.equal(ethers.ZeroAddress);
      await expectRejectedWithoutTransaction(
        () =>
          revokeOperators({
            provider,
            registryAddress,
            accounts: [operator.address],
            guardian: { nodeAccount: guardian.address },
          }),
        /is not the registry's guardian \(none is set\)/,
      );
    });

    it("rejects too few signatures and changes nothing", async function () {
      const { proposeGuardian, signBy, context, executor, registry, guardian } = await setup();
      const signed = await signBy(await proposeGuardian(guardian.address), carol);
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: signed, executor }),
        /too few signatures: 1 of the 2 required/,
      );
      expect(await registry.guardian()).to.equal(ethers.ZeroAddress);
    });

    it("rejects a guardian proposal once a rotation used its Safe nonce", async function () {
      const { proposeGuardian, signBy, context, executor, registryAddress, guardian, newOperator } = await setup();
      const guardianProposal = await signBy(await proposeGuardian(guardian.address), alice, bob);
      const rotation = await createProposal({ ...context, registryAddress, remove: [], add: [newOperator.address] });
      await executeProposal({ ...context, proposal: await signBy(rotation, alice, bob), executor });
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: guardianProposal, executor }),
        /Safe nonce 0 was already used \(the Safe is at nonce 1\)/,
      );
    });

    it("re-checks the guardian on chain: rejects a proposal whose expected guardian changed meanwhile", async function () {
      const { proposeGuardian, signBy, context, executor, registry, registryAddress, safeAddress, guardian, outsider } =
        await setup();
      // A Safe module changes state without using a Safe nonce, so the nonce check alone cannot see this change.
      const [aliceSafe, bobSafe, executorSafe] = await Promise.all(
        [alice, bob, executor].map((signer) => openSafe({ ...context, safeAddress, signer })),
      );
      const enable = await bobSafe.signTransaction(
        await aliceSafe.signTransaction(await aliceSafe.createEnableModuleTx(outsider.address)),
      );
      await executorSafe.executeTransaction(enable);

      const signed = await signBy(await proposeGuardian(guardian.address), alice, bob);
      const safe = new ethers.Contract(
        safeAddress,
        ["function execTransactionFromModule(address to, uint256 value, bytes data, uint8 operation) returns (bool)"],
        outsider,
      );
      const setByModule = registry.interface.encodeFunctionData("setGuardian", [outsider.address]);
      await (await safe.execTransactionFromModule(registryAddress, 0, setByModule, 0)).wait();
      expect(await registry.guardian()).to.equal(outsider.address);

      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: signed, executor }),
        new RegExp(
          `^the registry's guardian is now ${outsider.address}, not none as the proposal expects: create a new proposal$`,
        ),
      );
      expect(await registry.guardian()).to.equal(outsider.address);
    });
  });

  describe("proposal files", function () {
    it("rejects a file whose summary names another previous guardian than the registry's (signing checks it)", async function () {
      const { proposeGuardian, context, guardian, outsider } = await setup();
      const proposal = await proposeGuardian(guardian.address);
      // Consistent on its own (previousGuardian is not part of the signed transaction), but false on chain.
      const change = { previousGuardian: outsider.address, guardian: guardian.address };
      const text = JSON.stringify({
        ...proposal,
        summary: { ...proposal.summary, ...change, description: describeGuardianChange(change) },
      });
      const misleading = parseProposal(text, "guardian.json");
      await expectRejectedWithoutTransaction(
        () => signProposal({ ...context, proposal: misleading, signer: alice }),
        new RegExp(`the registry's guardian is now none, not ${outsider.address} as the proposal expects`),
      );
    });

    it("rejects a summary whose guardian is not the one in the transaction data", async function () {
      const { proposeGuardian, guardian, outsider } = await setup();
      const proposal = await proposeGuardian(guardian.address);
      const text = JSON.stringify({ ...proposal, summary: { ...proposal.summary, guardian: outsider.address } });
      expect(() => parseProposal(text, "guardian.json")).to.throw(
        /^tampered proposal: the summary does not match the guardian in the transaction data$/,
      );
    });

    it("rejects a rotation summary over setGuardian data", async function () {
      const { proposeGuardian, guardian } = await setup();
      const proposal = await proposeGuardian(guardian.address);
      const summary = { action: "rotateOperators", remove: [], add: [guardian.address], description: "" };
      expect(() => parseProposal(JSON.stringify({ ...proposal, summary }), "guardian.json")).to.throw(
        /tampered proposal: the summary does not match the guardian in the transaction data/,
      );
    });

    it("rejects an unknown action, naming the field", async function () {
      const { proposeGuardian, guardian } = await setup();
      const proposal = await proposeGuardian(guardian.address);
      const text = JSON.stringify({ ...proposal, summary: { ...proposal.summary, action: "transferOwnership" } });
      expect(() => parseProposal(text, "guardian.json")).to.throw(
        /guardian\.json is not a valid proposal: summary\.action: Invalid discriminator value/,
      );
    });

    it("still reads a version 1 file (a rotation, written before guardian proposals)", async function () {
      const { context, registryAddress, operator } = await setup();
      const current = await createProposal({ ...context, registryAddress, remove: [operator.address], add: [] });
      const { action: _action, ...legacySummary } = current.summary;
      const legacy = parseProposal(JSON.stringify({ ...current, version: 1, summary: legacySummary }), "old.json");
      expect(legacy).to.deep.equal(current);
    });
  });
});
