import { expect } from "chai";

import { GRACE_PERIOD, deployBillingFixture, ethers, networkHelpers } from "./fixtures.js";

/** Deploys a billing contract (and so its registry) owned by `owner`; returns both. */
async function deploySystem(owner: string, operators: string[], guardian = ethers.ZeroAddress) {
  const billing = await ethers.deployContract("RecurringBilling", [owner, operators, guardian, GRACE_PERIOD]);
  const registry = await ethers.getContractAt("OperatorRegistry", await billing.registry());
  return { billing, registry };
}

describe("OperatorRegistry", function () {
  async function registryFixture() {
    const base = await deployBillingFixture();
    const [, , , , , , , , , , newOperator, secondOperator] = await ethers.getSigners();
    return { ...base, newOperator, secondOperator };
  }

  describe("deployment", function () {
    it("sets the owner and registers the initial operators", async function () {
      const { registry, safe, operator, guardian } = await networkHelpers.loadFixture(registryFixture);
      expect(await registry.owner()).to.equal(safe.address);
      expect(await registry.isOperator(operator.address)).to.equal(true);
      expect(await registry.operators()).to.deep.equal([operator.address]);
      expect(await registry.operatorCount()).to.equal(1n);
      expect(await registry.guardian()).to.equal(guardian.address);
    });

    it("is created by its billing contract, which knows every initial operator", async function () {
      const { safe, guardian, operator, newOperator } = await networkHelpers.loadFixture(registryFixture);
      const { billing, registry } = await deploySystem(
        safe.address,
        [operator.address, newOperator.address],
        guardian.address,
      );
      const deployment = billing.deploymentTransaction();
      await expect(deployment).to.emit(registry, "OperatorAdded").withArgs(operator.address);
      await expect(deployment).to.emit(registry, "OperatorAdded").withArgs(newOperator.address);
      await expect(deployment).to.emit(registry, "GuardianChanged").withArgs(ethers.ZeroAddress, guardian.address);
      expect(await registry.billing()).to.equal(await billing.getAddress());
      expect(await registry.operatorCount()).to.equal(2n);
      expect(await billing.isOperator(operator.address)).to.equal(true);
      expect(await billing.isOperator(newOperator.address)).to.equal(true);
    });

    it("has no guardian when none is given", async function () {
      const { safe, operator } = await networkHelpers.loadFixture(registryFixture);
      const { registry } = await deploySystem(safe.address, [operator.address]);
      expect(await registry.guardian()).to.equal(ethers.ZeroAddress);
    });

    it("reverts with RegistryZeroAddress when an initial operator is zero", async function () {
      const { registry, safe } = await networkHelpers.loadFixture(registryFixture);
      await expect(deploySystem(safe.address, [ethers.ZeroAddress])).to.be.revertedWithCustomError(
        registry,
        "RegistryZeroAddress",
      );
    });

    it("reverts with RegistryAlreadyOperator when an initial operator is listed twice", async function () {
      const { registry, safe, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(deploySystem(safe.address, [operator.address, operator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryAlreadyOperator")
        .withArgs(operator.address);
    });

    it("reverts with RegistryAdminAsOperator when an initial operator is the owner or the guardian", async function () {
      const { registry, safe, guardian, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(deploySystem(safe.address, [operator.address, safe.address], guardian.address))
        .to.be.revertedWithCustomError(registry, "RegistryAdminAsOperator")
        .withArgs(safe.address);
      await expect(deploySystem(safe.address, [guardian.address], guardian.address))
        .to.be.revertedWithCustomError(registry, "RegistryAdminAsOperator")
        .withArgs(guardian.address);
    });

    it("reverts with OwnableInvalidOwner when the owner is zero", async function () {
      const { registry } = await networkHelpers.loadFixture(registryFixture);
      await expect(deploySystem(ethers.ZeroAddress, []))
        .to.be.revertedWithCustomError(registry, "OwnableInvalidOwner")
        .withArgs(ethers.ZeroAddress);
    });
  });

  describe("rotateOperators", function () {
    it("removes and adds operators in one call", async function () {
      const { registry, safe, operator, newOperator, secondOperator } =
        await networkHelpers.loadFixture(registryFixture);
      const tx = registry
        .connect(safe)
        .rotateOperators([operator.address], [newOperator.address, secondOperator.address]);
      await expect(tx).to.emit(registry, "OperatorRemoved").withArgs(operator.address, safe.address);
      await expect(tx).to.emit(registry, "OperatorAdded").withArgs(newOperator.address);
      await expect(tx).to.emit(registry, "OperatorAdded").withArgs(secondOperator.address);
      expect(await registry.isOperator(operator.address)).to.equal(false);
      expect(await registry.isOperator(newOperator.address)).to.equal(true);
      expect(await registry.isOperator(secondOperator.address)).to.equal(true);
      expect(await registry.operatorCount()).to.equal(2n);
      expect([...(await registry.operators())].sort()).to.deep.equal(
        [newOperator.address, secondOperator.address].sort(),
      );
    });

    it("applies removals before additions, so an operator can be removed and re-added", async function () {
      const { registry, safe, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).rotateOperators([operator.address], [operator.address]))
        .to.emit(registry, "OperatorRemoved")
        .withArgs(operator.address, safe.address);
      expect(await registry.isOperator(operator.address)).to.equal(true);
    });

    it("reverts with RegistryNotOperator and changes nothing when a removed address is not an operator", async function () {
      const { registry, safe, operator, newOperator, outsider } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).rotateOperators([operator.address, outsider.address], [newOperator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
        .withArgs(outsider.address);
      expect(await registry.isOperator(operator.address)).to.equal(true);
      expect(await registry.isOperator(newOperator.address)).to.equal(false);
    });

    it("reverts with RegistryAlreadyOperator and changes nothing when an added address already is one", async function () {
      const { registry, safe, operator, newOperator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).rotateOperators([], [newOperator.address, operator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryAlreadyOperator")
        .withArgs(operator.address);
      expect(await registry.isOperator(newOperator.address)).to.equal(false);
    });

    it("reverts with RegistryZeroAddress when adding the zero address", async function () {
      const { registry, safe } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).rotateOperators([], [ethers.ZeroAddress])).to.be.revertedWithCustomError(
        registry,
        "RegistryZeroAddress",
      );
    });

    it("reverts with OwnableUnauthorizedAccount when an operator tries to add operators", async function () {
      const { registry, operator, newOperator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(operator).rotateOperators([], [newOperator.address]))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(operator.address);
    });

    it("reverts with OwnableUnauthorizedAccount for the guardian", async function () {
      const { registry, guardian, newOperator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(guardian).rotateOperators([], [newOperator.address]))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(guardian.address);
    });
  });

  describe("revokeOperators", function () {
    it("lets the guardian revoke operators", async function () {
      const { registry, safe, guardian, operator, newOperator } = await networkHelpers.loadFixture(registryFixture);
      await registry.connect(safe).rotateOperators([], [newOperator.address]);
      const tx = registry.connect(guardian).revokeOperators([operator.address, newOperator.address]);
      await expect(tx).to.emit(registry, "OperatorRemoved").withArgs(operator.address, guardian.address);
      await expect(tx).to.emit(registry, "OperatorRemoved").withArgs(newOperator.address, guardian.address);
      expect(await registry.operatorCount()).to.equal(0n);
      expect(await registry.operators()).to.deep.equal([]);
    });

    it("lets the owner revoke operators", async function () {
      const { registry, safe, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).revokeOperators([operator.address]))
        .to.emit(registry, "OperatorRemoved")
        .withArgs(operator.address, safe.address);
      expect(await registry.isOperator(operator.address)).to.equal(false);
    });

    it("reverts with RegistryNotOperator when an address is not an operator", async function () {
      const { registry, guardian, outsider } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(guardian).revokeOperators([outsider.address]))
        .to.be.revertedWithCustomError(registry, "RegistryNotOperator")
        .withArgs(outsider.address);
    });

    it("reverts with RegistryUnauthorizedRevoker for an operator", async function () {
      const { registry, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(operator).revokeOperators([operator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryUnauthorizedRevoker")
        .withArgs(operator.address);
    });

    it("reverts with RegistryUnauthorizedRevoker for any other account", async function () {
      const { registry, operator, outsider } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(outsider).revokeOperators([operator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryUnauthorizedRevoker")
        .withArgs(outsider.address);
    });
  });

  describe("admin and operator separation", function () {
    it("refuses the owner, the pending owner and the guardian as operators with RegistryAdminAsOperator", async function () {
      const { registry, safe, guardian, outsider } = await networkHelpers.loadFixture(registryFixture);
      await registry.connect(safe).transferOwnership(outsider.address);
      for (const admin of [safe, outsider, guardian]) {
        await expect(registry.connect(safe).rotateOperators([], [admin.address]))
          .to.be.revertedWithCustomError(registry, "RegistryAdminAsOperator")
          .withArgs(admin.address);
      }
    });

    it("refuses an operator as guardian or new owner with RegistryOperatorAsAdmin", async function () {
      const { registry, safe, guardian, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).setGuardian(operator.address))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorAsAdmin")
        .withArgs(operator.address);
      await expect(registry.connect(safe).transferOwnership(operator.address))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorAsAdmin")
        .withArgs(operator.address);
      expect(await registry.guardian()).to.equal(guardian.address);
      expect(await registry.pendingOwner()).to.equal(ethers.ZeroAddress);
    });
  });

  describe("keeping the billing contract in step", function () {
    it("pushes every addition and removal into billing.isOperator", async function () {
      const { billing, registry, safe, guardian, operator, newOperator, secondOperator } =
        await networkHelpers.loadFixture(registryFixture);
      await registry.connect(safe).rotateOperators([operator.address], [newOperator.address, secondOperator.address]);
      expect(await billing.isOperator(operator.address)).to.equal(false);
      expect(await billing.isOperator(newOperator.address)).to.equal(true);
      expect(await billing.isOperator(secondOperator.address)).to.equal(true);
      await registry.connect(guardian).revokeOperators([newOperator.address]);
      expect(await billing.isOperator(newOperator.address)).to.equal(false);
      expect(await billing.isOperator(secondOperator.address)).to.equal(true);
    });

    it("keeps an operator added during a global pause unable to charge until unpause", async function () {
      const { billing, registry, safe, newOperator } = await networkHelpers.loadFixture(registryFixture);
      await billing.connect(safe).pause();
      await registry.connect(safe).rotateOperators([], [newOperator.address]);
      expect(await billing.isOperator(newOperator.address)).to.equal(true);
      await expect(billing.connect(newOperator).chargeMany([])).to.be.revertedWithCustomError(billing, "BillingPaused");
      await billing.connect(safe).unpause();
      expect(await billing.connect(newOperator).chargeMany.staticCall([])).to.equal(0n);
    });

    it("is the only account that may call billing.syncOperator (BillingNotRegistry)", async function () {
      const { billing, safe, outsider } = await networkHelpers.loadFixture(registryFixture);
      for (const caller of [safe, outsider]) {
        await expect(billing.connect(caller).syncOperator(caller.address, true))
          .to.be.revertedWithCustomError(billing, "BillingNotRegistry")
          .withArgs(caller.address);
      }
      expect(await billing.isOperator(outsider.address)).to.equal(false);
    });
  });

  describe("setGuardian", function () {
    it("replaces the guardian and emits GuardianChanged", async function () {
      const { registry, safe, guardian, operator, outsider } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).setGuardian(outsider.address))
        .to.emit(registry, "GuardianChanged")
        .withArgs(guardian.address, outsider.address);
      expect(await registry.guardian()).to.equal(outsider.address);
      await expect(registry.connect(guardian).revokeOperators([operator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryUnauthorizedRevoker")
        .withArgs(guardian.address);
    });

    it("disables the fast path when set to zero", async function () {
      const { registry, safe, guardian, operator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).setGuardian(ethers.ZeroAddress))
        .to.emit(registry, "GuardianChanged")
        .withArgs(guardian.address, ethers.ZeroAddress);
      await expect(registry.connect(guardian).revokeOperators([operator.address]))
        .to.be.revertedWithCustomError(registry, "RegistryUnauthorizedRevoker")
        .withArgs(guardian.address);
    });

    it("reverts with OwnableUnauthorizedAccount for the guardian itself", async function () {
      const { registry, guardian, outsider } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(guardian).setGuardian(outsider.address))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(guardian.address);
    });
  });

  describe("ownership", function () {
    it("transfers in two steps: the new owner must accept", async function () {
      const { registry, safe, outsider, newOperator } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).transferOwnership(outsider.address))
        .to.emit(registry, "OwnershipTransferStarted")
        .withArgs(safe.address, outsider.address);
      expect(await registry.owner()).to.equal(safe.address);
      expect(await registry.pendingOwner()).to.equal(outsider.address);

      await expect(registry.connect(outsider).acceptOwnership())
        .to.emit(registry, "OwnershipTransferred")
        .withArgs(safe.address, outsider.address);
      expect(await registry.owner()).to.equal(outsider.address);
      expect(await registry.pendingOwner()).to.equal(ethers.ZeroAddress);
      await expect(registry.connect(safe).rotateOperators([], [newOperator.address]))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(safe.address);
    });

    it("reverts with OwnableUnauthorizedAccount when someone other than the pending owner accepts", async function () {
      const { registry, safe, outsider, operator } = await networkHelpers.loadFixture(registryFixture);
      await registry.connect(safe).transferOwnership(outsider.address);
      await expect(registry.connect(operator).acceptOwnership())
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(operator.address);
    });

    it("reverts with RegistryRenounceDisabled when the owner renounces", async function () {
      const { registry, safe } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(safe).renounceOwnership()).to.be.revertedWithCustomError(
        registry,
        "RegistryRenounceDisabled",
      );
      expect(await registry.owner()).to.equal(safe.address);
    });

    it("reverts with OwnableUnauthorizedAccount when anyone else renounces", async function () {
      const { registry, outsider } = await networkHelpers.loadFixture(registryFixture);
      await expect(registry.connect(outsider).renounceOwnership())
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(outsider.address);
    });
  });
});
