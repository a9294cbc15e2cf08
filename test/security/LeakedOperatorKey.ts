// Threat model, row "operator key": an attacker holding a leaked operator key may charge due subscriptions at the
// earliest second, at most `maxBacklog` periods of a subscription at once, only to the merchant's beneficiary, and
// waste its own gas; nothing else. Every other attempt below must fail (a custom error with its arguments, or a
// ChargeSkipped event in chargeMany) and leave every token balance where it was.
import { expect } from "chai";

import {
  AMOUNT,
  MAX_BACKLOG,
  PERIOD,
  SkipReason,
  Status,
  ethers,
  networkHelpers,
  nextChargeAt,
  otherRef,
  statusOf,
  subscribe,
  subscribedFixture,
} from "../fixtures.js";
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
  await time.increaseTo(await nextChargeAt(base.billing, base.ref));
  return base;
}

describe("Security: leaked operator key", function () {
  describe("charge timing", function () {
    it("cannot charge a period one second before it is due", async function () {
      const { billing, token, asAttacker, ref, parties } = await loadFixture(leakedKeyFixture);
      const next = await nextChargeAt(billing, ref);
      await time.setNextBlockTimestamp(next - 1n);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.charge(ref)).to.be.revertedWithCustomError(billing, "BillingNotDue").withArgs(ref.id, next),
      );
    });

    it("cannot charge early through chargeMany either", async function () {
      const { billing, token, asAttacker, refs, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, async () => {
        const tx = asAttacker.chargeMany(refs);
        for (const ref of refs) {
          await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(ref.id, SkipReason.NotDue);
        }
        await expect(tx).not.to.emit(billing, "Charged");
      });
    });

    it("cannot charge the same period twice with two charge calls", async function () {
      const { billing, token, asAttacker, ref, customer, beneficiary, parties } =
        await loadFixture(leakedKeyDueFixture);
      const before = await snapshotBalances(token, parties);
      await asAttacker.charge(ref);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });

      const next = await nextChargeAt(billing, ref);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.charge(ref)).to.be.revertedWithCustomError(billing, "BillingNotDue").withArgs(ref.id, next),
      );
    });

    it("charges a due id repeated in one chargeMany only once", async function () {
      const { billing, token, asAttacker, ref, customer, beneficiary, parties } =
        await loadFixture(leakedKeyDueFixture);
      const next = await nextChargeAt(billing, ref);
      const before = await snapshotBalances(token, parties);
      const tx = asAttacker.chargeMany([ref, ref, ref]);
      await expect(tx)
        .to.emit(billing, "Charged")
        .withArgs(ref.id, 1n, AMOUNT, next + PERIOD);
      const receipt = await (await tx).wait();
      const skipped = receipt!.logs
        .map((log) => billing.interface.parseLog(log))
        .filter((event) => event?.name === "ChargeSkipped");
      expect(skipped.map((event) => [event!.args.subscriptionId, event!.args.reason])).to.deep.equal([
        [ref.id, SkipReason.NotDue],
        [ref.id, SkipReason.NotDue],
      ]);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
    });
  });

  describe("charge of a stopped subscription", function () {
    it("cannot charge after the customer cancelled", async function () {
      const { billing, token, asAttacker, ref, customer, parties } = await loadFixture(leakedKeyDueFixture);
      await billing.connect(customer).cancel(ref);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Cancelled);
        await expect(asAttacker.chargeMany([ref]))
          .to.emit(billing, "ChargeSkipped")
          .withArgs(ref.id, SkipReason.NotActive);
      });
    });

    it("cannot charge while the Safe has paused billing globally, nor unpause it", async function () {
      const { billing, token, asAttacker, attacker, ref, safe, parties } = await loadFixture(leakedKeyDueFixture);
      await billing.connect(safe).pause();
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(ref)).to.be.revertedWithCustomError(billing, "BillingPaused");
        await expect(asAttacker.chargeMany([ref])).to.be.revertedWithCustomError(billing, "BillingPaused");
        await expect(asAttacker.unpause())
          .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
          .withArgs(attacker.address);
      });
      expect(await billing.paused()).to.equal(true);
    });

    it("cannot charge while the merchant has paused its billing, nor unpause it", async function () {
      const { billing, token, asAttacker, attacker, ref, merchantId, merchantAdmin, parties } =
        await loadFixture(leakedKeyDueFixture);
      await billing.connect(merchantAdmin).setMerchantPaused(merchantId, true);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingMerchantPaused")
          .withArgs(merchantId);
        await expect(asAttacker.chargeMany([ref]))
          .to.emit(billing, "ChargeSkipped")
          .withArgs(ref.id, SkipReason.MerchantPaused);
        await expect(asAttacker.setMerchantPaused(merchantId, false))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, attacker.address);
      });
      expect((await billing.getMerchant(merchantId)).billing.paused).to.equal(true);
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
      const { billing, registry, token, asAttacker, attacker, guardian, ref, parties } =
        await loadFixture(leakedKeyDueFixture);
      await registry.connect(guardian).revokeOperators([attacker.address]);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAttacker.charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
          .withArgs(ref.id, attacker.address);
        await expect(asAttacker.chargeMany([ref]))
          .to.be.revertedWithCustomError(billing, "BillingNotAnOperator")
          .withArgs(attacker.address);
      });
      expect(await billing.isOperator(attacker.address)).to.equal(false);
    });
  });

  describe("backlog", function () {
    /** A plan with the default backlog of one period, `customer` subscribed to it (period 0 paid). */
    async function defaultBacklogFixture() {
      const base = await leakedKeyFixture();
      const { billing, merchantAdmin, merchantId, customer, token } = base;
      await billing.connect(merchantAdmin).createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, 1n);
      const backlogRef = await subscribe(billing, customer, await billing.planCount());
      return { ...base, backlogRef };
    }

    it("collects at most maxBacklog periods of a long-overdue subscription, repeating it in one chargeMany", async function () {
      const { billing, token, asAttacker, ref, customer, beneficiary, parties } = await loadFixture(leakedKeyFixture);
      const start = (await nextChargeAt(billing, ref)) - PERIOD;
      // Ten periods have started since period 0 was paid.
      await time.increaseTo(start + 10n * PERIOD);
      const before = await snapshotBalances(token, parties);
      const charged = await asAttacker.chargeMany.staticCall(Array(10).fill(ref));
      await asAttacker.chargeMany(Array(10).fill(ref));
      expect(charged).to.equal(MAX_BACKLOG);
      await expectBalanceChanges(token, before, {
        [customer.address]: -MAX_BACKLOG * AMOUNT,
        [beneficiary.address]: MAX_BACKLOG * AMOUNT,
      });
      // The forgiven periods are gone for good: the schedule is at the current period.
      expect(await nextChargeAt(billing, ref)).to.equal(start + 11n * PERIOD);
    });

    it("takes one period per period with the default backlog, however long the keeper was away", async function () {
      const { billing, token, asAttacker, backlogRef, customer, beneficiary, parties } =
        await loadFixture(defaultBacklogFixture);
      const start = (await nextChargeAt(billing, backlogRef)) - PERIOD;
      await time.increaseTo(start + 5n * PERIOD + PERIOD / 2n);
      const before = await snapshotBalances(token, parties);
      await asAttacker.chargeMany([backlogRef, backlogRef, backlogRef]);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
      await expect(asAttacker.charge(backlogRef))
        .to.be.revertedWithCustomError(billing, "BillingNotDue")
        .withArgs(backlogRef.id, start + 6n * PERIOD);
    });

    it("cannot collect the periods that fell due during a global pause", async function () {
      const { billing, token, safe, asAttacker, backlogRef, customer, beneficiary, parties } =
        await loadFixture(defaultBacklogFixture);
      await billing.connect(safe).pause();
      await time.increase(4n * PERIOD);
      await billing.connect(safe).unpause();
      const before = await snapshotBalances(token, parties);
      await asAttacker.chargeMany([backlogRef, backlogRef, backlogRef, backlogRef]);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
    });
  });

  describe("forged refs", function () {
    it("cannot charge a subscription with a ref naming another customer, amount or token", async function () {
      const { billing, token, asAttacker, attacker, ref, customers, parties } = await loadFixture(leakedKeyDueFixture);
      // Changing any field of the ref (say, to a token the attacker controls) addresses no subscription at all.
      const forged = [
        otherRef(ref, { customer: customers[1].address }),
        otherRef(ref, { customer: attacker.address }),
        otherRef(ref, { amount: AMOUNT * 10n }),
        otherRef(ref, { amount: 1n }),
        otherRef(ref, { token: attacker.address }),
      ];
      await expectNoBalanceMoves(token, parties, async () => {
        for (const wrong of forged) {
          await expect(asAttacker.charge(wrong))
            .to.be.revertedWithCustomError(billing, "BillingUnknownSubscription")
            .withArgs(ref.id);
        }
        const tx = asAttacker.chargeMany(forged);
        await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(ref.id, SkipReason.UnknownSubscription);
        await expect(tx).not.to.emit(billing, "Charged");
      });
      expect(await billing.isDue(ref)).to.equal(true);
    });
  });

  describe("cancel", function () {
    it("cannot cancel a customer's subscription", async function () {
      const { billing, token, asAttacker, attacker, ref, parties } = await loadFixture(leakedKeyFixture);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAttacker.cancel(ref))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCanceller")
          .withArgs(ref.id, attacker.address),
      );
      expect(await statusOf(billing, ref)).to.equal(Status.Active);
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
      expect((await billing.getMerchant(merchantId)).billing.beneficiary).to.equal(beneficiary.address);
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
        await expect(
          asAttacker.createPlan(merchantId, await token.getAddress(), AMOUNT * 10n, PERIOD, 0n, 0n, MAX_BACKLOG),
        )
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
      await asAttacker.createPlan(2n, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG);
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
      const { token, asAttacker, ref, customer, beneficiary, parties } = await loadFixture(leakedKeyDueFixture);
      const before = await snapshotBalances(token, parties);
      await asAttacker.charge(ref);
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
