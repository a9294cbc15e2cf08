import { expect } from "chai";

import { computeSafeTxHash, type Proposal } from "../../tasks/safe/lib/proposal-file.js";
import { mergeProposals } from "../../tasks/safe/lib/proposal-merge.js";
import {
  createGuardianProposal,
  createProposal,
  executeProposal,
  signProposal,
} from "../../tasks/safe/lib/proposal.js";
import { describeGuardianChange } from "../../tasks/safe/lib/registry.js";
import { alice, bob, carol, safeProposalSetup } from "./fixtures.js";

async function setup() {
  const { fixture, context, executor } = await safeProposalSetup();
  const propose = () =>
    createProposal({
      ...context,
      registryAddress: fixture.registryAddress,
      remove: [fixture.operator.address],
      add: [fixture.newOperator.address],
    });
  const signBy = async <ProposalT extends Proposal>(proposal: ProposalT, ...signers: { privateKey: string }[]) => {
    let signed = proposal;
    for (const signer of signers) signed = await signProposal({ ...context, proposal: signed, signer });
    return signed;
  };
  return { ...fixture, context, executor, propose, signBy };
}

/** Copies as `operators:merge` gets them: each proposal with a file name. */
const copies = (...proposals: Proposal[]) =>
  proposals.map((proposal, index) => ({ source: `copy${index + 1}.json`, proposal }));

describe("Merging signed copies of a proposal", function () {
  it("merges copies signed in parallel by different owners; the result executes", async function () {
    const { propose, signBy, context, executor, registry, owners, newOperator } = await setup();
    const proposed = await propose();
    // Alice and Carol each sign their own copy of the same proposed file.
    const [byAlice, byCarol] = [await signBy(proposed, alice), await signBy(proposed, carol)];

    const merged = mergeProposals(copies(byAlice, byCarol));

    expect(merged.signatures.map((signature) => signature.signer)).to.deep.equal([owners[0], owners[2]]);
    expect({ ...merged, signatures: [] }).to.deep.equal(proposed);
    await executeProposal({ ...context, proposal: merged, executor });
    expect(await registry.operators()).to.deep.equal([newOperator.address]);
  });

  it("keeps one signature per owner", async function () {
    const { propose, signBy, owners } = await setup();
    const byAlice = await signBy(await propose(), alice);
    const byAliceAndBob = await signBy(byAlice, bob);
    const merged = mergeProposals(copies(byAlice, byAliceAndBob, byAlice));
    expect(merged.signatures.map((signature) => signature.signer)).to.deep.equal([owners[0], owners[1]]);
  });

  it("refuses copies of different proposals at the same nonce, naming what differs", async function () {
    const { propose, signBy, context, registryAddress, guardian } = await setup();
    const rotation = await signBy(await propose(), alice);
    const guardianChange = await signBy(
      await createGuardianProposal({ ...context, registryAddress, guardian: guardian.address }),
      bob,
    );
    expect(() => mergeProposals(copies(rotation, guardianChange))).to.throw(
      /^copy2\.json is not a copy of the same Safe transaction as copy1\.json: the transaction data differs; only copies of one proposal can be merged$/,
    );
  });

  it("refuses a copy for another Safe nonce", async function () {
    const { propose, signBy, context, executor, registryAddress, guardian } = await setup();
    const first = await signBy(await propose(), alice, bob);
    const guardianChange = await createGuardianProposal({ ...context, registryAddress, guardian: guardian.address });
    await executeProposal({ ...context, proposal: await signBy(guardianChange, alice, bob), executor });
    const second = await propose();
    expect(() => mergeProposals(copies(first, second))).to.throw(/the Safe nonce differs \(0 vs 1\)/);
  });

  it("refuses a copy for another chain", async function () {
    const { propose } = await setup();
    const proposal = await propose();
    const elsewhere = {
      ...proposal,
      chainId: "5",
      safeTxHash: computeSafeTxHash(5n, proposal.safe, proposal.safeTransaction),
    };
    expect(() => mergeProposals(copies(proposal, elsewhere))).to.throw(/the chain differs \(31337 vs 5\)/);
  });

  it("refuses copies whose summaries differ although the transaction is the same", async function () {
    const { context, registryAddress, guardian, outsider } = await setup();
    const proposal = await createGuardianProposal({ ...context, registryAddress, guardian: guardian.address });
    const change = { previousGuardian: outsider.address, guardian: guardian.address };
    const edited = {
      ...proposal,
      summary: { ...proposal.summary, ...change, description: describeGuardianChange(change) },
    };
    expect(() => mergeProposals(copies(proposal, edited))).to.throw(/the summary differs/);
  });

  it("refuses fewer than two copies", async function () {
    const { propose } = await setup();
    const proposal = await propose();
    expect(() => mergeProposals(copies(proposal))).to.throw(/^give at least two proposal files to merge$/);
    expect(() => mergeProposals([])).to.throw(/^give at least two proposal files to merge$/);
  });

  it("refuses a copy with a forged signature", async function () {
    const { propose, signBy, owners } = await setup();
    const proposed = await propose();
    const byAlice = await signBy(proposed, alice);
    const forged = { ...byAlice, signatures: [{ ...byAlice.signatures[0], signer: owners[1] }] };
    expect(() => mergeProposals(copies(byAlice, forged))).to.throw(
      new RegExp(`signature said to be by ${owners[1]} was made by ${owners[0]}`),
    );
  });
});
