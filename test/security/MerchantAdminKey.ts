// Threat model, row "merchant admin key": whoever holds a merchant's admin key may do what that merchant may, but must
// never touch another merchant nor take more from a customer than the terms the customer subscribed to.
import { expect } from "chai";

import {
  AMOUNT,
  MAX_BACKLOG,
  MAX_CHARGES,
  PERIOD,
  SkipReason,
  Status,
  ethers,
  fundAndApprove,
  networkHelpers,
  nextChargeAt,
  statusOf,
  subscribe,
  subscribedFixture,
} from "../fixtures.js";
import { expectBalanceChanges, expectNoBalanceMoves, snapshotBalances } from "./balances.js";

const { loadFixture, time } = networkHelpers;

/**
 * Two merchants: `victimMerchantId` (admin `otherAdmin`, beneficiary `victimBeneficiary`, one subscriber `victim`)
 * and the fixture's merchant 1, whose admin key (`merchantAdmin`) is in the attacker's hands.
 */
async function twoMerchantsFixture() {
  const base = await subscribedFixture();
  const { billing, token, safe, otherAdmin, customers, beneficiary, merchantAdmin, operator } = base;
  const [victimBeneficiary, victim] = (await ethers.getSigners()).slice(10, 12);
  const billingAddress = await billing.getAddress();

  await billing.connect(otherAdmin).registerMerchant(victimBeneficiary.address);
  const victimMerchantId = await billing.merchantCount();
  await billing
    .connect(otherAdmin)
    .createPlan(victimMerchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG);
  const victimPlanId = await billing.planCount();
  await fundAndApprove(token, safe, victim, billingAddress);
  const victimRef = await subscribe(billing, victim, victimPlanId);

  return {
    ...base,
    victimBeneficiary,
    victim,
    victimMerchantId,
    victimPlanId,
    victimRef,
    asAdmin: billing.connect(merchantAdmin),
    parties: [
      ...customers.map((c) => c.address),
      victim.address,
      beneficiary.address,
      victimBeneficiary.address,
      merchantAdmin.address,
      otherAdmin.address,
      operator.address,
      billingAddress,
    ],
  };
}

/** Like {twoMerchantsFixture} with every subscription's second period due. */
async function twoMerchantsDueFixture() {
  const base = await twoMerchantsFixture();
  await time.increaseTo(await nextChargeAt(base.billing, base.victimRef));
  return base;
}

describe("Security: leaked merchant admin key", function () {
  describe("another merchant", function () {
    it("cannot redirect its charges, hand it over or pause it", async function () {
      const { billing, token, asAdmin, merchantAdmin, victimMerchantId, victimBeneficiary, parties } =
        await loadFixture(twoMerchantsFixture);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAdmin.setBeneficiary(victimMerchantId, merchantAdmin.address))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(victimMerchantId, merchantAdmin.address);
        await expect(asAdmin.transferMerchantAdmin(victimMerchantId, merchantAdmin.address))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(victimMerchantId, merchantAdmin.address);
        await expect(asAdmin.setMerchantPaused(victimMerchantId, true))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(victimMerchantId, merchantAdmin.address);
      });
      const victimMerchant = await billing.getMerchant(victimMerchantId);
      expect(victimMerchant.billing.beneficiary).to.equal(victimBeneficiary.address);
      expect(victimMerchant.pendingAdmin).to.equal(ethers.ZeroAddress);
      expect(victimMerchant.billing.paused).to.equal(false);
    });

    it("cannot create or close its plans", async function () {
      const { billing, token, asAdmin, merchantAdmin, victimMerchantId, victimPlanId } =
        await loadFixture(twoMerchantsFixture);
      await expect(
        asAdmin.createPlan(victimMerchantId, await token.getAddress(), AMOUNT * 2n, PERIOD, 0n, 0n, MAX_BACKLOG),
      )
        .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
        .withArgs(victimMerchantId, merchantAdmin.address);
      await expect(asAdmin.setPlanActive(victimPlanId, false))
        .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
        .withArgs(victimMerchantId, merchantAdmin.address);
      expect((await billing.getPlan(victimPlanId)).active).to.equal(true);
    });

    it("cannot charge its subscriptions, alone or in a batch", async function () {
      const { billing, token, asAdmin, merchantAdmin, victimRef, parties } = await loadFixture(twoMerchantsDueFixture);
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAdmin.charge(victimRef))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
          .withArgs(victimRef.id, merchantAdmin.address);
        await expect(asAdmin.chargeMany([victimRef]))
          .to.be.revertedWithCustomError(billing, "BillingNotAnOperator")
          .withArgs(merchantAdmin.address);
      });
    });

    it("charges only its own subscriptions in a mixed batch", async function () {
      const { billing, token, asAdmin, refs, victimRef, customers, beneficiary, parties } =
        await loadFixture(twoMerchantsDueFixture);
      const before = await snapshotBalances(token, parties);
      await expect(asAdmin.chargeMany([victimRef, ...refs]))
        .to.emit(billing, "ChargeSkipped")
        .withArgs(victimRef.id, SkipReason.Unauthorized);
      await expectBalanceChanges(token, before, {
        ...Object.fromEntries(customers.map((c) => [c.address, -AMOUNT])),
        [beneficiary.address]: AMOUNT * BigInt(customers.length),
      });
    });

    it("cannot cancel its subscriptions", async function () {
      const { billing, asAdmin, merchantAdmin, victimRef } = await loadFixture(twoMerchantsFixture);
      await expect(asAdmin.cancel(victimRef))
        .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCanceller")
        .withArgs(victimRef.id, merchantAdmin.address);
      expect(await statusOf(billing, victimRef)).to.equal(Status.Active);
    });
  });

  describe("a customer's terms", function () {
    it("cannot charge its own customer early or twice in a period", async function () {
      const { billing, token, asAdmin, ref, parties } = await loadFixture(twoMerchantsFixture);
      const next = await nextChargeAt(billing, ref);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAdmin.charge(ref)).to.be.revertedWithCustomError(billing, "BillingNotDue").withArgs(ref.id, next),
      );
      await time.increaseTo(next);
      await asAdmin.charge(ref);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAdmin.charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingNotDue")
          .withArgs(ref.id, next + PERIOD),
      );
    });

    it("cannot raise the price of an existing subscription with a new or closed plan", async function () {
      const { billing, token, asAdmin, merchantId, planId, ref, customer, beneficiary, parties } =
        await loadFixture(twoMerchantsFixture);
      await asAdmin.createPlan(merchantId, await token.getAddress(), AMOUNT * 100n, 60n, 0n, 0n, MAX_BACKLOG);
      await asAdmin.setPlanActive(planId, false);
      await time.increaseTo(await nextChargeAt(billing, ref));
      const before = await snapshotBalances(token, parties);
      await asAdmin.charge(ref);
      await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
    });

    it("cannot charge a capped subscription beyond its last period", async function () {
      const { billing, token, safe, asAdmin, cappedPlanId, parties } = await loadFixture(twoMerchantsFixture);
      const [capped] = (await ethers.getSigners()).slice(12, 13);
      await fundAndApprove(token, safe, capped, await billing.getAddress());
      const id = await subscribe(billing, capped, cappedPlanId);
      for (let period = 1n; period < MAX_CHARGES; period++) {
        await time.increaseTo(await nextChargeAt(billing, id));
        await asAdmin.charge(id);
      }
      expect(await statusOf(billing, id)).to.equal(Status.Completed);
      await time.increase(PERIOD * 3n);
      await expectNoBalanceMoves(token, [...parties, capped.address], () =>
        expect(asAdmin.charge(id))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(id.id, Status.Completed),
      );
    });

    it("cannot charge a subscription its customer cancelled", async function () {
      const { billing, token, asAdmin, ref, customer, parties } = await loadFixture(twoMerchantsDueFixture);
      await billing.connect(customer).cancel(ref);
      await expectNoBalanceMoves(token, parties, () =>
        expect(asAdmin.charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Cancelled),
      );
    });

    it("cannot unpause billing that the Safe paused", async function () {
      const { billing, token, safe, asAdmin, merchantAdmin, ref, parties } = await loadFixture(twoMerchantsDueFixture);
      await billing.connect(safe).pause();
      await expectNoBalanceMoves(token, parties, async () => {
        await expect(asAdmin.unpause())
          .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
          .withArgs(merchantAdmin.address);
        await expect(asAdmin.charge(ref)).to.be.revertedWithCustomError(billing, "BillingPaused");
      });
    });
  });
});
