import { expect } from "chai";

import { parseAddressList } from "../../tasks/safe/lib/addresses.js";
import { computeSafeTxHash, parseProposal, type Proposal } from "../../tasks/safe/lib/proposal-file.js";
import { createProposal, executeProposal, signProposal } from "../../tasks/safe/lib/proposal.js";
import { readSafeState } from "../../tasks/safe/lib/safe-account.js";
import { alice, bob, carol, ethers, expectRejectedWithoutTransaction, safeProposalSetup } from "./fixtures.js";

async function setup() {
  const { fixture, context, executor } = await safeProposalSetup();
  /** A proposal replacing the fixture's operator by `newOperator`. */
  const propose = (changes: { remove?: string[]; add?: string[] } = {}) =>
    createProposal({
      ...context,
      registryAddress: fixture.registryAddress,
      remove: changes.remove ?? [fixture.operator.address],
      add: changes.add ?? [fixture.newOperator.address],
    });
  const signBy = async <ProposalT extends Proposal>(proposal: ProposalT, ...signers: { privateKey: string }[]) => {
    let signed = proposal;
    for (const signer of signers) signed = await signProposal({ ...context, proposal: signed, signer });
    return signed;
  };
  return { ...fixture, context, executor, propose, signBy };
}

describe("Safe operator rotation", function () {
  describe("createProposal", function () {
    it("records the chain, Safe, registry, Safe nonce, Safe transaction, its hash and a summary", async function () {
      const { propose, safeAddress, registryAddress, operator, newOperator } = await setup();
      const proposal = await propose();
      expect(proposal.chainId).to.equal("31337");
      expect(proposal.safe).to.equal(safeAddress);
      expect(proposal.registry).to.equal(registryAddress);
      expect(proposal.safeNonce).to.equal(0);
      expect(proposal.safeTransaction.to).to.equal(registryAddress);
      expect(proposal.safeTransaction.nonce).to.equal(0);
      expect(proposal.summary.remove).to.deep.equal([operator.address]);
      expect(proposal.summary.add).to.deep.equal([newOperator.address]);
      expect(proposal.summary.description).to.contain(operator.address).and.contain(newOperator.address);
      expect(proposal.signatures).to.deep.equal([]);
      expect(proposal.safeTxHash).to.equal(computeSafeTxHash(31337n, safeAddress, proposal.safeTransaction));
    });

    it("rejects an address with no contract as the Safe", async function () {
      const { context, registryAddress, operator, outsider } = await setup();
      const attempt = () =>
        createProposal({
          ...context,
          registryAddress,
          safeAddress: outsider.address,
          remove: [operator.address],
          add: [],
        });
      await expectRejectedWithoutTransaction(attempt, new RegExp(`${outsider.address} is not a Safe: no contract`));
    });

    it("rejects a contract that is not a Safe", async function () {
      const { context, registryAddress, operator, token } = await setup();
      const tokenAddress = await token.getAddress();
      const attempt = () =>
        createProposal({
          ...context,
          registryAddress,
          safeAddress: tokenAddress,
          remove: [operator.address],
          add: [],
        });
      await expectRejectedWithoutTransaction(attempt, new RegExp(`${tokenAddress} is not a Safe: it does not answer`));
    });

    it("rejects removing an address that is not an operator", async function () {
      const { propose, outsider } = await setup();
      await expectRejectedWithoutTransaction(
        () => propose({ remove: [outsider.address] }),
        new RegExp(`cannot remove ${outsider.address}: it is not an operator`),
      );
    });

    it("rejects adding an address that is already an operator", async function () {
      const { propose, operator } = await setup();
      await expectRejectedWithoutTransaction(
        () => propose({ remove: [], add: [operator.address] }),
        new RegExp(`cannot add ${operator.address}: it is already an operator`),
      );
    });

    it("rejects an address that is both removed and added", async function () {
      const { propose, operator } = await setup();
      await expectRejectedWithoutTransaction(
        () => propose({ remove: [operator.address], add: [operator.address] }),
        /is in both --add and --remove/,
      );
    });
  });

  describe("parseAddressList", function () {
    it("rejects a malformed address, naming the option", function () {
      expect(() => parseAddressList("0x1234", "--add")).to.throw(/--add: "0x1234" is not a valid address/);
    });

    it("rejects a wrong mixed-case checksum, naming the checksummed address", function () {
      const bad = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6a65";
      expect(() => parseAddressList(bad, "--remove")).to.throw(
        `--remove: "${bad}" has a bad checksum; did you mean 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65? ` +
          "(check the address letter by letter before using it)",
      );
    });
  });

  describe("signProposal", function () {
    it("adds one owner's signature and leaves the given proposal untouched", async function () {
      const { propose, signBy, owners } = await setup();
      const proposal = await propose();
      const signed = await signBy(proposal, alice);
      expect(proposal.signatures).to.have.length(0);
      expect(signed.signatures.map((signature) => signature.signer)).to.deep.equal([owners[0]]);
      expect(ethers.recoverAddress(signed.safeTxHash, signed.signatures[0].data)).to.equal(owners[0]);
    });

    it("rejects a signer who is not an owner", async function () {
      const { propose, context } = await setup();
      const stranger = ethers.Wallet.createRandom();
      const proposal = await propose();
      await expectRejectedWithoutTransaction(
        () => signProposal({ ...context, proposal, signer: { privateKey: stranger.privateKey } }),
        new RegExp(`${stranger.address} is not an owner of Safe`),
      );
    });

    it("rejects a second signature by the same owner", async function () {
      const { propose, signBy } = await setup();
      const proposal = await propose();
      await expectRejectedWithoutTransaction(() => signBy(proposal, alice, alice), /has already signed/);
    });
  });

  describe("executeProposal", function () {
    it("rotates operators in ONE transaction signed by 2 of 3 owners", async function () {
      const { propose, signBy, context, executor, registry, billing, subscription, operator, newOperator } =
        await setup();
      const signed = await signBy(await propose(), alice, carol);
      const blockBefore = await ethers.provider.getBlockNumber();
      const nonceBefore = await ethers.provider.getTransactionCount(executor.nodeAccount);

      const result = await executeProposal({ ...context, proposal: signed, executor });

      expect(result.blockNumber).to.equal(blockBefore + 1);
      expect(await ethers.provider.getBlockNumber()).to.equal(blockBefore + 1);
      const block = await ethers.provider.getBlock(result.blockNumber);
      expect(block?.transactions).to.deep.equal([result.transactionHash]);
      expect(await ethers.provider.getTransactionCount(executor.nodeAccount)).to.equal(nonceBefore + 1);
      const receipt = await ethers.provider.getTransactionReceipt(result.transactionHash);
      const events = receipt!.logs
        .map((log) => registry.interface.parseLog(log))
        .filter((parsed) => parsed !== null)
        .map((parsed) => `${parsed.name}:${parsed.args[0]}`);
      expect(events).to.deep.equal([`OperatorRemoved:${operator.address}`, `OperatorAdded:${newOperator.address}`]);
      expect(await registry.operators()).to.deep.equal([newOperator.address]);

      await expect(billing.connect(operator).charge(subscription))
        .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
        .withArgs(subscription.id, operator.address);
      await expect(billing.connect(newOperator).charge(subscription)).to.emit(billing, "Charged");
    });

    it("applies several removals and additions together", async function () {
      const { propose, signBy, context, executor, registry, operator, newOperator, guardian, outsider } = await setup();
      const first = await signBy(await propose({ remove: [], add: [newOperator.address] }), alice, bob);
      await executeProposal({ ...context, proposal: first, executor });
      const second = await propose({
        remove: [operator.address, newOperator.address],
        add: [guardian.address, outsider.address],
      });
      const result = await executeProposal({ ...context, proposal: await signBy(second, bob, carol), executor });
      expect(new Set(await registry.operators())).to.deep.equal(new Set([guardian.address, outsider.address]));
      expect((await ethers.provider.getBlock(result.blockNumber))?.transactions).to.have.length(1);
    });

    it("rejects too few signatures and changes nothing", async function () {
      const { propose, signBy, context, executor, registry, owners, operator } = await setup();
      const signed = await signBy(await propose(), bob);
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: signed, executor }),
        new RegExp(`too few signatures: 1 of the 2 required .*signed by ${owners[1]}`),
      );
      expect(await registry.operators()).to.deep.equal([operator.address]);
    });

    it("rejects a proposal whose Safe nonce was already used", async function () {
      const { propose, signBy, context, executor, safeAddress } = await setup();
      const rotation = await signBy(await propose(), alice, bob);
      const competing = await signBy(
        await propose({ remove: [], add: [ethers.Wallet.createRandom().address] }),
        bob,
        carol,
      );
      await executeProposal({ ...context, proposal: competing, executor });
      expect((await readSafeState(ethers.provider, safeAddress)).nonce).to.equal(1);
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: rotation, executor }),
        /Safe nonce 0 was already used \(the Safe is at nonce 1\)/,
      );
    });

    it("rejects a proposal for another chain", async function () {
      const { propose, context, executor } = await setup();
      const proposal = await propose();
      // Internally consistent (its hash is recomputed for chain 5) but not for this network.
      const elsewhere = {
        ...proposal,
        chainId: "5",
        safeTxHash: computeSafeTxHash(5n, proposal.safe, proposal.safeTransaction),
      };
      await expectRejectedWithoutTransaction(
        () => signProposal({ ...context, proposal: elsewhere, signer: alice }),
        /the proposal is for chain 5 but the network is chain 31337/,
      );
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: elsewhere, executor }),
        /the proposal is for chain 5 but the network is chain 31337/,
      );
    });
  });

  describe("tampered proposals", function () {
    it("rejects changed transaction data (safeTxHash mismatch)", async function () {
      const { propose, signBy, context, executor, registry, outsider, operator } = await setup();
      const signed = await signBy(await propose(), alice, bob);
      const data = registry.interface.encodeFunctionData("rotateOperators", [[operator.address], [outsider.address]]);
      const tampered = {
        ...signed,
        safeTransaction: { ...signed.safeTransaction, data },
        summary: { ...signed.summary, add: [outsider.address], description: signed.summary.description },
      };
      tampered.summary.description = tampered.summary.description.replace(signed.summary.add[0], outsider.address);
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: tampered, executor }),
        /tampered proposal: safeTxHash mismatch/,
      );
      expect(await registry.operators()).to.deep.equal([operator.address]);
    });

    it("rejects a summary that does not say what the data does", async function () {
      const { propose, outsider } = await setup();
      const proposal = await propose();
      const text = JSON.stringify({ ...proposal, summary: { ...proposal.summary, add: [outsider.address] } });
      expect(() => parseProposal(text, "proposal.json")).to.throw(/summary does not match/);
    });

    it("rejects a signature that is not by the owner it names", async function () {
      const { propose, signBy, context, executor, owners } = await setup();
      const signed = await signBy(await propose(), alice, bob);
      const forged = { ...signed, signatures: [signed.signatures[0], { ...signed.signatures[1], signer: owners[2] }] };
      await expectRejectedWithoutTransaction(
        () => executeProposal({ ...context, proposal: forged, executor }),
        new RegExp(`signature said to be by ${owners[2]} was made by ${owners[1]}`),
      );
    });

    it("names the invalid field of a file that is not a proposal", function () {
      expect(() => parseProposal(JSON.stringify({ version: 1, chainId: 31337 }), "p.json")).to.throw(
        /p\.json is not a valid proposal: chainId: Expected string/,
      );
    });
  });
});
