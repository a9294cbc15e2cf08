// Threat model, row "operator key": an attacker holding a leaked operator key may charge due subscriptions at the
// earliest second and waste its own gas, nothing else. Every attempt below must fail (a custom error with its
// arguments, or a ChargeSkipped event in chargeMany) and leave every token balance where it was.
import { expect } from "chai";

import { AMOUNT, PERIOD, SkipReason, Status, ethers, networkHelpers, subscribedFixture } from "../fixtures.js";
import { expectBalanceChanges, expectNoBalanceMoves, snapshotBalances } from "./balances.js";

const { loadFixture, time } = networkHelpers;

/** The subscribed world, seen from the attacker: `attacker` is the registered operator whose key leaked. */
async function leakedKeyFixture() {
  const base = await subscribedFixture();
  const { billing, registry, token, operator, customers, beneficiary, merchantAdmin, safe, guardian } = base;
  return {
    ...base,
    attacker: operator,
    asAttacker: billing.connect(operator),
    registryAsAttacker: registry.connect(operator),
    parties: [
      ...customers.map((c) => c.address),
      beneficiary.address,
      operator.address,
      merchantAdmin.address,
      safe.address,
      guardian.address,
      await billing.getAddress(),
      await token.getAddress(),
    ],
  };
}

/** Like {leakedKeyFixture} with the first subscription's second period due now. */
async function leakedKeyDueFixture() {
  const base = await leakedKeyFixture();
  await time.increaseTo(await base.billing.nextChargeAt(base.subscriptionId));
  return base;
}

describe("Security: leaked operator key", function () {
  describe("charge timing", function () {
    it("cannot charge a period one second before it is due", async function () {
      const { billing, token, asAttacker, subscriptionId, parties } = await loadFixture(leakedKeyFixture);
      const next = await billing.nextChargeAt(subscriptionId);
      await time.setNextBlockTimestamp(next - 1n);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.charge(subscriptionId))
          .to.be.revertedWithCustomError(billing, "BillingNotDue")
          .withArgs(subscriptionId, next),
      );
    });

    it("cannot charge early through chargeMany either", async function () {
      const { billing, token, asAttacker, subscriptionIds, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, async () => {
        const tx = asAttacker.chargeMany(subscriptionIds);
        for (const id of subscriptionIds) {
          await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(id, SkipReason.NotDue);
        }
        await expect(tx).not.to.emit(billing, "Charged");
      });
    });

    it("cannot charge the same period twice with two charge calls", async function () {
      const { billing, token, asAttacker, subscriptionId, customer, beneficiary, parties } =
        await loadFixture(leakedKeyDueFixture);
      const before = await snapshotBalances(token, parties);
      await asAttacker.charge(subscriptionId);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });

      const next = await billing.nextChargeAt(subscriptionId);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.charge(subscriptionId))
          .to.be.revertedWithCustomError(billing, "BillingNotDue")
          .withArgs(subscriptionId, next),
      );
    });

    it("charges a due id repeated in one chargeMany only once", async function () {
      const { billing, token, asAttacker, subscriptionId, customer, beneficiary, parties } =
        await loadFixture(leakedKeyDueFixture);
      const next = await billing.nextChargeAt(subscriptionId);
      const before = await snapshotBalances(token, parties);
      const tx = asAttacker.chargeMany([subscriptionId, subscriptionId, subscriptionId]);
      await expect(tx)
        .to.emit(billing, "Charged")
        .withArgs(subscriptionId, 1n, customer.address, AMOUNT, 1n, next + PERIOD);
      const receipt = await (await tx).wait();
      const skipped = receipt!.logs
        .map((log) => billing.interface.parseLog(log))
        .filter((event) => event?.name === "ChargeSkipped");
      expect(skipped.map((event) => [event!.args.subscriptionId, event!.args.reason])).to.deep.equal([
        [subscriptionId, SkipReason.NotDue],
        [subscriptionId, SkipReason.NotDue],
      ]);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
    });
  });

  describe("charge of a stopped subscription", function () {
    it("cannot charge after the customer cancelled", async function () {
      const { billing, token, asAttacker, subscriptionId, customer, parties } = await loadFixture(leakedKeyDueFixture);
      await billing.connect(customer).cancel(subscriptionId);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(subscriptionId))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(subscriptionId, Status.Cancelled);
        await expect(asAttacker.chargeMany([subscriptionId]))
          .to.emit(billing, "ChargeSkipped")
          .withArgs(subscriptionId, SkipReason.NotActive);
      });
    });

    it("cannot charge while the Safe has paused billing globally, nor unpause it", async function () {
      const { billing, token, asAttacker, attacker, subscriptionId, safe, parties } =
        await loadFixture(leakedKeyDueFixture);
      await billing.connect(safe).pause();
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(subscriptionId)).to.be.revertedWithCustomError(billing, "EnforcedPause");
        await expect(asAttacker.chargeMany([subscriptionId])).to.be.revertedWithCustomError(billing, "EnforcedPause");
        await expect(asAttacker.unpause())
          .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
          .withArgs(attacker.address);
      });
      expect(await billing.paused()).to.equal(true);
    });

    it("cannot charge while the merchant has paused its billing, nor unpause it", async function () {
      const { billing, token, asAttacker, attacker, subscriptionId, merchantId, merchantAdmin, parties } =
        await loadFixture(leakedKeyDueFixture);
      await billing.connect(merchantAdmin).setMerchantPaused(merchantId, true);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(subscriptionId))
          .to.be.revertedWithCustomError(billing, "BillingMerchantPaused")
          .withArgs(merchantId);
        await expect(asAttacker.chargeMany([subscriptionId]))
          .to.emit(billing, "ChargeSkipped")
          .withArgs(subscriptionId, SkipReason.MerchantPaused);
        await expect(asAttacker.setMerchantPaused(merchantId, false))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, attacker.address);
      });
      expect((await billing.getMerchant(merchantId)).paused).to.equal(true);
    });

    it("cannot pause billing globally or for a merchant (to unpause later)", async function () {
      const { billing, token, asAttacker, attacker, merchantId, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.pause())
          .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
          .withArgs(attacker.address);
        await expect(asAttacker.setMerchantPaused(merchantId, true))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, attacker.address);
      });
    });

    it("cannot charge once its key has been revoked by the guardian", async function () {
      const { billing, registry, token, asAttacker, attacker, guardian, subscriptionId, parties } =
        await loadFixture(leakedKeyDueFixture);
      await registry.connect(guardian).revokeOperators([attacker.address]);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(subscriptionId))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
          .withArgs(subscriptionId, attacker.address);
        await expect(asAttacker.chargeMany([subscriptionId]))
          .to.emit(billing, "ChargeSkipped")
          .withArgs(subscriptionId, SkipReason.Unauthorized);
      });
    });
  });

  describe("cancel", function () {
    it("cannot cancel a customer's subscription", async function () {
      const { billing, token, asAttacker, attacker, subscriptionId, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.cancel(subscriptionId))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCanceller")
          .withArgs(subscriptionId, attacker.address),
      );
      expect(await billing.statusOf(subscriptionId)).to.equal(Status.Active);
    });
  });

  describe("funds and terms", function () {
    it("cannot redirect the merchant's charges with setBeneficiary", async function () {
      const { billing, token, asAttacker, attacker, merchantId, beneficiary, parties } =
        await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.setBeneficiary(merchantId, attacker.address))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, attacker.address),
      );
      expect((await billing.getMerchant(merchantId)).beneficiary).to.equal(beneficiary.address);
    });

    it("cannot take over the merchant admin role", async function () {
      const { billing, asAttacker, attacker, merchantId, merchantAdmin } = await loadFixture(leakedKeyFixture);
      await expect(asAttacker.transferMerchantAdmin(merchantId, attacker.address))
        .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
        .withArgs(merchantId, attacker.address);
      await expect(asAttacker.acceptMerchantAdmin(merchantId))
        .to.be.revertedWithCustomError(billing, "BillingNotPendingAdmin")
        .withArgs(merchantId, attacker.address);
      expect((await billing.getMerchant(merchantId)).admin).to.equal(merchantAdmin.address);
    });

    it("cannot create a plan for the merchant or close one of its plans", async function () {
      const { billing, token, asAttacker, attacker, merchantId, planId, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.createPlan(merchantId, await token.getAddress(), AMOUNT * 10n, PERIOD, 0n, 0n))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, attacker.address);
        await expect(asAttacker.setPlanActive(planId, false))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, attacker.address);
      });
      expect((await billing.getPlan(planId)).active).to.equal(true);
    });

    it("registers merchants only for itself, and cannot bill a customer's allowance to them", async function () {
      const { billing, token, asAttacker, attacker, customer, parties } = await loadFixture(leakedKeyFixture);
      // The customer approved the billing contract for an unlimited amount: the tempting target.
      expect(await token.allowance(customer.address, await billing.getAddress())).to.equal(ethers.MaxUint256);
      await expect(asAttacker.registerMerchant(attacker.address))
        .to.emit(billing, "MerchantRegistered")
        .withArgs(2n, attacker.address, attacker.address);
      await asAttacker.createPlan(2n, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n);
      const roguePlanId = await billing.planCount();
      // subscribe bills msg.sender, so the attacker can only subscribe (and pay) itself.
      const billingAddress = await billing.getAddress();
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.subscribe(roguePlanId))
          .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
          .withArgs(billingAddress, 0n, AMOUNT),
      );
    });

    it("cannot pull a customer's tokens directly", async function () {
      const { token, attacker, customer, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, () =>
        expect(token.connect(attacker).transferFrom(customer.address, attacker.address, AMOUNT))
          .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
          .withArgs(attacker.address, 0n, AMOUNT),
      );
    });

    it("pays a due charge it triggers to the merchant's beneficiary only", async function () {
      const { token, asAttacker, subscriptionId, customer, beneficiary, parties } =
        await loadFixture(leakedKeyDueFixture);
      const before = await snapshotBalances(token, parties);
      await asAttacker.charge(subscriptionId);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
    });
  });

  describe("operator registry", function () {
    it("cannot add operators with rotateOperators", async function () {
      const { registry, registryAsAttacker, attacker, outsider } = await loadFixture(leakedKeyFixture);
      await expect(registryAsAttacker.rotateOperators([], [outsider.address]))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(attacker.address);
      expect(await registry.isOperator(outsider.address)).to.equal(false);
    });

    it("cannot make itself guardian or take ownership", async function () {
      const { registry, registryAsAttacker, attacker, guardian, safe } = await loadFixture(leakedKeyFixture);
      await expect(registryAsAttacker.setGuardian(attacker.address))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(attacker.address);
      await expect(registryAsAttacker.transferOwnership(attacker.address))
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(attacker.address);
      await expect(registryAsAttacker.acceptOwnership())
        .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount")
        .withArgs(attacker.address);
      expect(await registry.guardian()).to.equal(guardian.address);
      expect(await registry.owner()).to.equal(safe.address);
    });

    it("cannot revoke operators (for example a replacement key) as a non-guardian", async function () {
      const { registry, registryAsAttacker, attacker, safe, outsider } = await loadFixture(leakedKeyFixture);
      await registry.connect(safe).rotateOperators([], [outsider.address]);
      await expect(registryAsAttacker.revokeOperators([outsider.address]))
        .to.be.revertedWithCustomError(registry, "RegistryUnauthorizedRevoker")
        .withArgs(attacker.address);
      expect(await registry.isOperator(outsider.address)).to.equal(true);
    });

    it("cannot take over the billing contract's ownership", async function () {
      const { billing, asAttacker, attacker, safe } = await loadFixture(leakedKeyFixture);
      await expect(asAttacker.transferOwnership(attacker.address))
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(attacker.address);
      expect(await billing.owner()).to.equal(safe.address);
    });
  });
});
