// Threat model, row "one Safe owner": at the contract level the Safe is a single owner address; an individual owner's
// key (any other signer) can do nothing alone. The guardian, the fast incident-response path, may only revoke.
import { expect } from "chai";

import { deployBillingFixture, networkHelpers } from "../fixtures.js";

const { loadFixture } = networkHelpers;

/** The deployed contracts plus `safeOwner`, the key of one of the Safe's owners (not the Safe itself). */
async function safeOwnerFixture() {
  const base = await deployBillingFixture();
  return { ...base, safeOwner: base.outsider };
}

describe("Security: Safe owners and guardian", function () {
  describe("OperatorRegistry", function () {
    describe("rotateOperators", function () {
      it("applies when the owner (the Safe) calls", async function () {
        const { registry, safe, operator, outsider } = await loadFixture(safeOwnerFixture);
        await registry.connect(safe).rotateOperators([operator.address], [outsider.address]);
        expect(await registry.operators()).to.deep.equal([outsider.address]);
      });

      it("reverts for every signer other than the owner", async function () {
        const { registry, safeOwner, guardian, operator, merchantAdmin, customer } =
          await loadFixture(safeOwnerFixture);
        for (const signer of [safeOwner, guardian, operator, merchantAdmin, customer]) {
          await expect(registry.connect(signer).rotateOperators([operator.address], [signer.address]))
            .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
            .withArgs(signer.address);
        }
        expect(await registry.operators()).to.deep.equal([operator.address]);
      });

      it("reverts for a pending owner until it accepts ownership", async function () {
        const { registry, safe, safeOwner, operator } = await loadFixture(safeOwnerFixture);
        await registry.connect(safe).transferOwnership(safeOwner.address);
        await expect(registry.connect(safeOwner).rotateOperators([], [safeOwner.address]))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(safeOwner.address);
        expect(await registry.operators()).to.deep.equal([operator.address]);
      });
    });

    describe("ownership", function () {
      it("cannot be taken or renounced by a Safe owner's key", async function () {
        const { registry, safe, safeOwner } = await loadFixture(safeOwnerFixture);
        await expect(registry.connect(safeOwner).transferOwnership(safeOwner.address))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(safeOwner.address);
        await expect(registry.connect(safeOwner).renounceOwnership())
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(safeOwner.address);
        expect(await registry.owner()).to.equal(safe.address);
      });
    });

    describe("guardian", function () {
      it("revokes an operator at once", async function () {
        const { registry, guardian, operator } = await loadFixture(safeOwnerFixture);
        await expect(registry.connect(guardian).revokeOperators([operator.address]))
          .to.emit(registry, "OperatorRemoved")
          .withArgs(operator.address, guardian.address);
        expect(await registry.isOperator(operator.address)).to.equal(false);
      });

      it("cannot add an operator, re-add a revoked one or appoint a guardian", async function () {
        const { registry, guardian, operator, outsider } = await loadFixture(safeOwnerFixture);
        await registry.connect(guardian).revokeOperators([operator.address]);
        await expect(registry.connect(guardian).rotateOperators([], [operator.address]))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(guardian.address);
        await expect(registry.connect(guardian).rotateOperators([], [outsider.address]))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(guardian.address);
        await expect(registry.connect(guardian).setGuardian(outsider.address))
          .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
          .withArgs(guardian.address);
        expect(await registry.operatorCount()).to.equal(0n);
        expect(await registry.guardian()).to.equal(guardian.address);
      });
    });
  });

  describe("RecurringBilling", function () {
    it("cannot be paused, unpaused or taken over by a Safe owner's key", async function () {
      const { billing, safe, safeOwner } = await loadFixture(safeOwnerFixture);
      await expect(billing.connect(safeOwner).pause())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(safeOwner.address);
      await billing.connect(safe).pause();
      await expect(billing.connect(safeOwner).unpause())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(safeOwner.address);
      await expect(billing.connect(safeOwner).transferOwnership(safeOwner.address))
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(safeOwner.address);
      expect(await billing.paused()).to.equal(true);
      expect(await billing.owner()).to.equal(safe.address);
    });

    it("cannot be paused or unpaused by the guardian", async function () {
      const { billing, safe, guardian } = await loadFixture(safeOwnerFixture);
      await expect(billing.connect(guardian).pause())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(guardian.address);
      await billing.connect(safe).pause();
      await expect(billing.connect(guardian).unpause())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(guardian.address);
    });
  });
});
