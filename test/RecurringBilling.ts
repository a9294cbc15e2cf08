import { anyUint, anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { expect } from "chai";

import {
  AMOUNT,
  CUSTOMER_FUNDS,
  DAY,
  GRACE_PERIOD,
  MAX_BACKLOG,
  MAX_CHARGES,
  PERIOD,
  SkipReason,
  Status,
  TRIAL,
  type SubscriptionRef,
  deployBillingFixture,
  dueFixture,
  ethers,
  fundAndApprove,
  merchantWithPlanFixture,
  networkHelpers,
  nextChargeAt,
  otherRef as withTerms,
  refFromReceipt,
  signPermit,
  statusOf,
  subscribe,
  subscribedFixture,
} from "./fixtures.js";

const { loadFixture, time } = networkHelpers;

/**
 * Storage slot of `RecurringBilling._plans`: after Ownable, Ownable2Step, the counters, the global pause, the operator
 * statuses and the merchants (ReentrancyGuardTransient uses transient storage).
 */
const PLANS_SLOT = 6n;

/** Fixes the timestamp of the next block `offset` seconds after the latest one, and returns it. */
async function nextBlockAt(offset = 1n): Promise<bigint> {
  const timestamp = BigInt(await time.latest()) + offset;
  await time.setNextBlockTimestamp(timestamp);
  return timestamp;
}

describe("RecurringBilling", function () {
  /** The first subscription, due, with the customer's balance moved away so that the charge fails. */
  async function brokeFixture() {
    const base = await dueFixture();
    const { token, customer, outsider } = base;
    await token.connect(customer).transfer(outsider.address, await token.balanceOf(customer.address));
    return base;
  }

  /** {brokeFixture} after one failed charge: the first subscription is past due. */
  async function pastDueFixture() {
    const base = await brokeFixture();
    const { billing, operator, ref } = base;
    await billing.connect(operator).charge(ref);
    // No pause has happened, so the billing clock still reads the block time.
    const pastDueSince = (await billing.getSubscription(ref)).pastDueClock;
    return { ...base, pastDueSince };
  }

  /** A second merchant, administered by `otherAdmin`, with one subscription of the first customer. */
  async function twoMerchantsFixture() {
    const base = await subscribedFixture();
    const { billing, token, otherAdmin, outsider, customer } = base;
    await billing.connect(otherAdmin).registerMerchant(outsider.address);
    const otherMerchantId = await billing.merchantCount();
    await billing
      .connect(otherAdmin)
      .createPlan(otherMerchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG);
    const otherRef = await subscribe(billing, customer, await billing.planCount());
    return { ...base, otherMerchantId, otherRef };
  }

  describe("deployment", function () {
    it("sets the owner, registry and grace period, with no merchant, plan or subscription", async function () {
      const { billing, registry, safe } = await loadFixture(deployBillingFixture);
      expect(await billing.owner()).to.equal(safe.address);
      expect(await billing.registry()).to.equal(await registry.getAddress());
      expect(await billing.gracePeriod()).to.equal(GRACE_PERIOD);
      expect(await billing.MIN_PERIOD()).to.equal(60n);
      expect(await billing.merchantCount()).to.equal(0n);
      expect(await billing.planCount()).to.equal(0n);
      expect(await billing.subscriptionCount()).to.equal(0n);
      expect(await billing.paused()).to.equal(false);
    });

    it("creates its registry, owned by the same owner, with the operators and guardian given", async function () {
      const { billing, registry, safe, operator, guardian } = await loadFixture(deployBillingFixture);
      expect(await registry.billing()).to.equal(await billing.getAddress());
      expect(await registry.owner()).to.equal(safe.address);
      expect(await registry.guardian()).to.equal(guardian.address);
      expect(await registry.operators()).to.deep.equal([operator.address]);
      expect(await billing.isOperator(operator.address)).to.equal(true);
      expect(await billing.isOperator(guardian.address)).to.equal(false);
    });

    it("reverts with OwnableInvalidOwner when the owner is zero", async function () {
      const { billing, operator } = await loadFixture(deployBillingFixture);
      await expect(
        ethers.deployContract("RecurringBilling", [
          ethers.ZeroAddress,
          [operator.address],
          ethers.ZeroAddress,
          GRACE_PERIOD,
        ]),
      )
        .to.be.revertedWithCustomError(billing, "OwnableInvalidOwner")
        .withArgs(ethers.ZeroAddress);
    });
  });

  describe("merchants", function () {
    describe("registerMerchant", function () {
      it("assigns sequential ids, makes the caller admin and emits MerchantRegistered", async function () {
        const { billing, merchantAdmin, beneficiary, otherAdmin, outsider } = await loadFixture(deployBillingFixture);
        await expect(billing.connect(merchantAdmin).registerMerchant(beneficiary.address))
          .to.emit(billing, "MerchantRegistered")
          .withArgs(1n, merchantAdmin.address, beneficiary.address);
        await expect(billing.connect(otherAdmin).registerMerchant(outsider.address))
          .to.emit(billing, "MerchantRegistered")
          .withArgs(2n, otherAdmin.address, outsider.address);
        expect(await billing.merchantCount()).to.equal(2n);
        const merchant = await billing.getMerchant(1n);
        expect(merchant.billing.beneficiary).to.equal(beneficiary.address);
        expect(merchant.admin).to.equal(merchantAdmin.address);
        expect(merchant.pendingAdmin).to.equal(ethers.ZeroAddress);
        expect(merchant.billing.paused).to.equal(false);
      });

      it("returns the new id", async function () {
        const { billing, merchantAdmin, beneficiary } = await loadFixture(deployBillingFixture);
        expect(await billing.connect(merchantAdmin).registerMerchant.staticCall(beneficiary.address)).to.equal(1n);
      });

      it("reverts with BillingInvalidBeneficiary when the beneficiary is zero or the billing contract", async function () {
        const { billing, merchantAdmin } = await loadFixture(deployBillingFixture);
        for (const beneficiary of [ethers.ZeroAddress, await billing.getAddress()]) {
          await expect(billing.connect(merchantAdmin).registerMerchant(beneficiary))
            .to.be.revertedWithCustomError(billing, "BillingInvalidBeneficiary")
            .withArgs(beneficiary);
        }
        expect(await billing.merchantCount()).to.equal(0n);
      });
    });

    describe("setBeneficiary", function () {
      it("pays later charges to the new beneficiary and emits BeneficiaryChanged", async function () {
        const { billing, token, merchantAdmin, beneficiary, operator, customer, outsider, merchantId, ref } =
          await loadFixture(dueFixture);
        await expect(billing.connect(merchantAdmin).setBeneficiary(merchantId, outsider.address))
          .to.emit(billing, "BeneficiaryChanged")
          .withArgs(merchantId, beneficiary.address, outsider.address);
        expect((await billing.getMerchant(merchantId)).billing.beneficiary).to.equal(outsider.address);
        await expect(billing.connect(operator).charge(ref)).to.changeTokenBalances(
          ethers,
          token,
          [customer, outsider, beneficiary],
          [-AMOUNT, AMOUNT, 0n],
        );
      });

      it("reverts with BillingInvalidBeneficiary when the beneficiary is zero or the billing contract", async function () {
        const { billing, merchantAdmin, beneficiary, merchantId } = await loadFixture(merchantWithPlanFixture);
        for (const invalid of [ethers.ZeroAddress, await billing.getAddress()]) {
          await expect(billing.connect(merchantAdmin).setBeneficiary(merchantId, invalid))
            .to.be.revertedWithCustomError(billing, "BillingInvalidBeneficiary")
            .withArgs(invalid);
        }
        expect((await billing.getMerchant(merchantId)).billing.beneficiary).to.equal(beneficiary.address);
      });

      it("reverts with BillingNotMerchantAdmin for an operator", async function () {
        const { billing, operator, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(operator).setBeneficiary(merchantId, operator.address))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, operator.address);
      });

      it("reverts with BillingUnknownMerchant for an unknown merchant", async function () {
        const { billing, merchantAdmin, beneficiary } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(merchantAdmin).setBeneficiary(2n, beneficiary.address))
          .to.be.revertedWithCustomError(billing, "BillingUnknownMerchant")
          .withArgs(2n);
      });
    });

    describe("transferMerchantAdmin and acceptMerchantAdmin", function () {
      it("hands the merchant over in two steps", async function () {
        const { billing, merchantAdmin, otherAdmin, beneficiary, merchantId } =
          await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(merchantAdmin).transferMerchantAdmin(merchantId, otherAdmin.address))
          .to.emit(billing, "MerchantAdminTransferStarted")
          .withArgs(merchantId, merchantAdmin.address, otherAdmin.address);
        let merchant = await billing.getMerchant(merchantId);
        expect(merchant.admin).to.equal(merchantAdmin.address);
        expect(merchant.pendingAdmin).to.equal(otherAdmin.address);

        await expect(billing.connect(otherAdmin).acceptMerchantAdmin(merchantId))
          .to.emit(billing, "MerchantAdminTransferred")
          .withArgs(merchantId, merchantAdmin.address, otherAdmin.address);
        merchant = await billing.getMerchant(merchantId);
        expect(merchant.admin).to.equal(otherAdmin.address);
        expect(merchant.pendingAdmin).to.equal(ethers.ZeroAddress);

        await expect(billing.connect(merchantAdmin).setBeneficiary(merchantId, merchantAdmin.address))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, merchantAdmin.address);
        await expect(billing.connect(otherAdmin).setBeneficiary(merchantId, otherAdmin.address))
          .to.emit(billing, "BeneficiaryChanged")
          .withArgs(merchantId, beneficiary.address, otherAdmin.address);
      });

      it("cancels a pending handover when the new admin is zero", async function () {
        const { billing, merchantAdmin, otherAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        await billing.connect(merchantAdmin).transferMerchantAdmin(merchantId, otherAdmin.address);
        await expect(billing.connect(merchantAdmin).transferMerchantAdmin(merchantId, ethers.ZeroAddress))
          .to.emit(billing, "MerchantAdminTransferStarted")
          .withArgs(merchantId, merchantAdmin.address, ethers.ZeroAddress);
        await expect(billing.connect(otherAdmin).acceptMerchantAdmin(merchantId))
          .to.be.revertedWithCustomError(billing, "BillingNotPendingAdmin")
          .withArgs(merchantId, otherAdmin.address);
      });

      it("reverts acceptMerchantAdmin with BillingNotPendingAdmin for anyone but the pending admin", async function () {
        const { billing, merchantAdmin, otherAdmin, operator, merchantId } = await loadFixture(merchantWithPlanFixture);
        await billing.connect(merchantAdmin).transferMerchantAdmin(merchantId, otherAdmin.address);
        await expect(billing.connect(operator).acceptMerchantAdmin(merchantId))
          .to.be.revertedWithCustomError(billing, "BillingNotPendingAdmin")
          .withArgs(merchantId, operator.address);
        await expect(billing.connect(merchantAdmin).acceptMerchantAdmin(merchantId))
          .to.be.revertedWithCustomError(billing, "BillingNotPendingAdmin")
          .withArgs(merchantId, merchantAdmin.address);
      });

      it("reverts acceptMerchantAdmin with BillingNotPendingAdmin when no handover is pending", async function () {
        const { billing, otherAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(otherAdmin).acceptMerchantAdmin(merchantId))
          .to.be.revertedWithCustomError(billing, "BillingNotPendingAdmin")
          .withArgs(merchantId, otherAdmin.address);
      });

      it("reverts transferMerchantAdmin with BillingNotMerchantAdmin for anyone but the admin", async function () {
        const { billing, operator, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(operator).transferMerchantAdmin(merchantId, operator.address))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, operator.address);
      });

      it("reverts transferMerchantAdmin with BillingUnknownMerchant for an unknown merchant", async function () {
        const { billing, merchantAdmin, otherAdmin } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(merchantAdmin).transferMerchantAdmin(0n, otherAdmin.address))
          .to.be.revertedWithCustomError(billing, "BillingUnknownMerchant")
          .withArgs(0n);
      });
    });

    describe("setMerchantPaused", function () {
      it("pauses and resumes the merchant's charges, emitting MerchantPauseSet", async function () {
        const { billing, merchantAdmin, operator, merchantId, ref } = await loadFixture(dueFixture);
        await expect(billing.connect(merchantAdmin).setMerchantPaused(merchantId, true))
          .to.emit(billing, "MerchantPauseSet")
          .withArgs(merchantId, true);
        expect((await billing.getMerchant(merchantId)).billing.paused).to.equal(true);
        expect(await billing.isDue(ref)).to.equal(false);
        await expect(billing.connect(operator).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingMerchantPaused")
          .withArgs(merchantId);

        await expect(billing.connect(merchantAdmin).setMerchantPaused(merchantId, false))
          .to.emit(billing, "MerchantPauseSet")
          .withArgs(merchantId, false);
        expect(await billing.isDue(ref)).to.equal(true);
        await expect(billing.connect(operator).charge(ref)).to.emit(billing, "Charged");
      });

      it("blocks new subscriptions with BillingMerchantPaused", async function () {
        const { billing, token, safe, merchantAdmin, customer, merchantId, planId } =
          await loadFixture(merchantWithPlanFixture);
        await fundAndApprove(token, safe, customer, await billing.getAddress());
        await billing.connect(merchantAdmin).setMerchantPaused(merchantId, true);
        await expect(billing.connect(customer).subscribe(planId))
          .to.be.revertedWithCustomError(billing, "BillingMerchantPaused")
          .withArgs(merchantId);
      });

      it("leaves other merchants' subscriptions chargeable", async function () {
        const { billing, otherAdmin, operator, ref, otherRef, otherMerchantId } =
          await loadFixture(twoMerchantsFixture);
        await billing.connect(otherAdmin).setMerchantPaused(otherMerchantId, true);
        await time.increaseTo(await nextChargeAt(billing, ref));
        expect(await billing.isDue(otherRef)).to.equal(false);
        await expect(billing.connect(operator).charge(ref)).to.emit(billing, "Charged");
      });

      it("reverts with BillingNotMerchantAdmin for an operator, which can neither pause nor unpause", async function () {
        const { billing, merchantAdmin, operator, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(operator).setMerchantPaused(merchantId, true))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, operator.address);
        await billing.connect(merchantAdmin).setMerchantPaused(merchantId, true);
        await expect(billing.connect(operator).setMerchantPaused(merchantId, false))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, operator.address);
      });

      it("reverts with BillingUnknownMerchant for an unknown merchant", async function () {
        const { billing, merchantAdmin } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(merchantAdmin).setMerchantPaused(7n, true))
          .to.be.revertedWithCustomError(billing, "BillingUnknownMerchant")
          .withArgs(7n);
      });
    });

    describe("getMerchant", function () {
      it("returns an empty record for an unknown merchant", async function () {
        const { billing } = await loadFixture(merchantWithPlanFixture);
        const merchant = await billing.getMerchant(2n);
        expect(merchant.admin).to.equal(ethers.ZeroAddress);
        expect(merchant.billing.beneficiary).to.equal(ethers.ZeroAddress);
      });
    });
  });

  describe("plans", function () {
    describe("createPlan", function () {
      it("stores the terms, assigns sequential ids and emits PlanCreated", async function () {
        const { billing, token, merchantAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        const tokenAddress = await token.getAddress();
        const planId = (await billing.planCount()) + 1n;
        await expect(billing.connect(merchantAdmin).createPlan(merchantId, tokenAddress, 5n, 3600n, 60n, 12n, 2n))
          .to.emit(billing, "PlanCreated")
          .withArgs(planId, merchantId, tokenAddress, 5n, 3600n, 60n, 12n, 2n);
        expect(await billing.planCount()).to.equal(planId);
        const plan = await billing.getPlan(planId);
        expect(plan.token).to.equal(tokenAddress);
        expect(plan.merchantId).to.equal(merchantId);
        expect(plan.amount).to.equal(5n);
        expect(plan.period).to.equal(3600n);
        expect(plan.trialPeriod).to.equal(60n);
        expect(plan.maxCharges).to.equal(12n);
        expect(plan.maxBacklog).to.equal(2n);
        expect(plan.active).to.equal(true);
      });

      it("accepts the boundaries: a period of MIN_PERIOD and an amount of 2^96 - 1", async function () {
        const { billing, token, merchantAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        const maxAmount = 2n ** 96n - 1n;
        await expect(
          billing
            .connect(merchantAdmin)
            .createPlan(merchantId, await token.getAddress(), maxAmount, 60n, 0n, 0n, MAX_BACKLOG),
        ).to.emit(billing, "PlanCreated");
        const plan = await billing.getPlan(await billing.planCount());
        expect(plan.amount).to.equal(maxAmount);
        expect(plan.period).to.equal(60n);
      });

      it("reverts with BillingInvalidToken when the token has no code", async function () {
        const { billing, merchantAdmin, outsider, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing.connect(merchantAdmin).createPlan(merchantId, outsider.address, AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG),
        )
          .to.be.revertedWithCustomError(billing, "BillingInvalidToken")
          .withArgs(outsider.address);
      });

      it("reverts with BillingInvalidAmount when the amount is zero", async function () {
        const { billing, token, merchantAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing
            .connect(merchantAdmin)
            .createPlan(merchantId, await token.getAddress(), 0n, PERIOD, 0n, 0n, MAX_BACKLOG),
        )
          .to.be.revertedWithCustomError(billing, "BillingInvalidAmount")
          .withArgs(0n);
      });

      it("reverts with BillingInvalidAmount when the amount does not fit in 96 bits", async function () {
        const { billing, token, merchantAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing
            .connect(merchantAdmin)
            .createPlan(merchantId, await token.getAddress(), 2n ** 96n, PERIOD, 0n, 0n, MAX_BACKLOG),
        )
          .to.be.revertedWithCustomError(billing, "BillingInvalidAmount")
          .withArgs(2n ** 96n);
      });

      it("reverts with BillingInvalidBacklog when the backlog is zero", async function () {
        const { billing, token, merchantAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing.connect(merchantAdmin).createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, 0n),
        )
          .to.be.revertedWithCustomError(billing, "BillingInvalidBacklog")
          .withArgs(0n);
      });

      it("reverts with BillingInvalidPeriod when the period is shorter than MIN_PERIOD", async function () {
        const { billing, token, merchantAdmin, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing
            .connect(merchantAdmin)
            .createPlan(merchantId, await token.getAddress(), AMOUNT, 59n, 0n, 0n, MAX_BACKLOG),
        )
          .to.be.revertedWithCustomError(billing, "BillingInvalidPeriod")
          .withArgs(59n);
      });

      it("reverts with BillingNotMerchantAdmin for an operator", async function () {
        const { billing, token, operator, merchantId } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing
            .connect(operator)
            .createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG),
        )
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(merchantId, operator.address);
      });

      it("reverts with BillingUnknownMerchant for an unknown merchant", async function () {
        const { billing, token, merchantAdmin } = await loadFixture(merchantWithPlanFixture);
        await expect(
          billing.connect(merchantAdmin).createPlan(9n, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG),
        )
          .to.be.revertedWithCustomError(billing, "BillingUnknownMerchant")
          .withArgs(9n);
      });
    });

    describe("setPlanActive", function () {
      it("closes a plan to new subscriptions but keeps charging existing ones", async function () {
        const { billing, merchantAdmin, operator, customers, planId, ref } = await loadFixture(dueFixture);
        await expect(billing.connect(merchantAdmin).setPlanActive(planId, false))
          .to.emit(billing, "PlanActiveSet")
          .withArgs(planId, false);
        expect((await billing.getPlan(planId)).active).to.equal(false);
        await expect(billing.connect(customers[1]).subscribe(planId))
          .to.be.revertedWithCustomError(billing, "BillingPlanInactive")
          .withArgs(planId);
        await expect(billing.connect(operator).charge(ref)).to.emit(billing, "Charged");
      });

      it("reopens a closed plan", async function () {
        const { billing, merchantAdmin, customers, planId } = await loadFixture(subscribedFixture);
        await billing.connect(merchantAdmin).setPlanActive(planId, false);
        await expect(billing.connect(merchantAdmin).setPlanActive(planId, true))
          .to.emit(billing, "PlanActiveSet")
          .withArgs(planId, true);
        await expect(billing.connect(customers[1]).subscribe(planId)).to.emit(billing, "Subscribed");
      });

      it("reverts with BillingUnknownPlan for an unknown plan", async function () {
        const { billing, merchantAdmin } = await loadFixture(merchantWithPlanFixture);
        await expect(billing.connect(merchantAdmin).setPlanActive(42n, false))
          .to.be.revertedWithCustomError(billing, "BillingUnknownPlan")
          .withArgs(42n);
      });

      it("reverts with BillingNotMerchantAdmin for anyone but the plan's merchant admin", async function () {
        const { billing, otherAdmin, planId } = await loadFixture(twoMerchantsFixture);
        await expect(billing.connect(otherAdmin).setPlanActive(planId, false))
          .to.be.revertedWithCustomError(billing, "BillingNotMerchantAdmin")
          .withArgs(1n, otherAdmin.address);
      });
    });

    describe("getPlan", function () {
      it("returns an empty plan for an unknown id", async function () {
        const { billing } = await loadFixture(merchantWithPlanFixture);
        const plan = await billing.getPlan(99n);
        expect(plan.token).to.equal(ethers.ZeroAddress);
        expect(plan.merchantId).to.equal(0n);
      });
    });
  });

  describe("subscriptions", function () {
    /** A funded, approving customer and the merchant's plans, nobody subscribed yet. */
    async function readyToSubscribeFixture() {
      const base = await merchantWithPlanFixture();
      const { billing, token, safe, customer } = base;
      await fundAndApprove(token, safe, customer, await billing.getAddress());
      return base;
    }

    /** The ref of the first subscription, taken by `customer` to a plan of AMOUNT in the fixture token. */
    const firstRef = (f: { customer: { address: string }; tokenAddress: string }): SubscriptionRef => ({
      id: 1n,
      customer: f.customer.address,
      amount: AMOUNT,
      token: f.tokenAddress,
    });

    describe("subscribe", function () {
      it("charges the first period at once and schedules the next one period later", async function () {
        const f = await loadFixture(readyToSubscribeFixture);
        const { billing, token, customer, beneficiary, merchantId, planId } = f;
        const now = await nextBlockAt();
        const tx = billing.connect(customer).subscribe(planId);
        await expect(tx)
          .to.emit(billing, "Subscribed")
          .withArgs(
            1n,
            merchantId,
            customer.address,
            planId,
            await token.getAddress(),
            AMOUNT,
            PERIOD,
            now,
            0n,
            MAX_BACKLOG,
          );
        await expect(tx)
          .to.emit(billing, "Charged")
          .withArgs(1n, merchantId, AMOUNT, now + PERIOD);
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);

        const ref = firstRef(f);
        expect(await refFromReceipt(billing, await tx)).to.deep.equal(ref);
        const sub = await billing.getSubscription(ref);
        expect(sub.merchantId).to.equal(merchantId);
        expect(sub.planId).to.equal(planId);
        expect(sub.period).to.equal(PERIOD);
        expect(sub.maxCharges).to.equal(0n);
        expect(sub.maxBacklog).to.equal(MAX_BACKLOG);
        expect(sub.nextChargeAt).to.equal(now + PERIOD);
        expect(sub.chargeCount).to.equal(1n);
        expect(sub.status).to.equal(Status.Active);
        expect(await billing.isDue(ref)).to.equal(false);
        expect(await billing.subscriptionKey(ref)).to.equal(
          ethers.keccak256(
            ethers.AbiCoder.defaultAbiCoder().encode(
              ["uint256", "address", "uint256", "address"],
              [ref.id, ref.customer, ref.amount, ref.token],
            ),
          ),
        );
      });

      it("addresses the subscription only with its exact ref: another customer, amount or token finds none", async function () {
        const f = await loadFixture(readyToSubscribeFixture);
        const { billing, customer, outsider, planId } = f;
        await billing.connect(customer).subscribe(planId);
        const ref = firstRef(f);
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
        for (const wrong of [
          withTerms(ref, { id: 2n }),
          withTerms(ref, { customer: outsider.address }),
          withTerms(ref, { amount: AMOUNT + 1n }),
          withTerms(ref, { token: outsider.address }),
        ]) {
          expect(await statusOf(billing, wrong)).to.equal(Status.None);
        }
      });

      it("assigns sequential ids and returns the new one", async function () {
        const { billing, customer, planId } = await loadFixture(readyToSubscribeFixture);
        expect(await billing.connect(customer).subscribe.staticCall(planId)).to.equal(1n);
        await billing.connect(customer).subscribe(planId);
        expect(await billing.connect(customer).subscribe.staticCall(planId)).to.equal(2n);
        await billing.connect(customer).subscribe(planId);
        expect(await billing.subscriptionCount()).to.equal(2n);
      });

      it("charges nothing during a trial and schedules period 0 at its end", async function () {
        const f = await loadFixture(readyToSubscribeFixture);
        const { billing, token, customer, beneficiary, merchantId, trialPlanId } = f;
        const now = await nextBlockAt();
        const tx = billing.connect(customer).subscribe(trialPlanId);
        await expect(tx)
          .to.emit(billing, "Subscribed")
          .withArgs(
            1n,
            merchantId,
            customer.address,
            trialPlanId,
            await token.getAddress(),
            AMOUNT,
            PERIOD,
            now + TRIAL,
            0n,
            MAX_BACKLOG,
          );
        await expect(tx).not.to.emit(billing, "Charged");
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [0n, 0n]);
        const sub = await billing.getSubscription(firstRef(f));
        expect(sub.nextChargeAt).to.equal(now + TRIAL);
        expect(sub.chargeCount).to.equal(0n);
        expect(sub.status).to.equal(Status.Active);
      });

      it("completes at once a plan of a single charge without trial", async function () {
        const f = await loadFixture(readyToSubscribeFixture);
        const { billing, token, merchantAdmin, customer, merchantId } = f;
        await billing
          .connect(merchantAdmin)
          .createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 1n, MAX_BACKLOG);
        const planId = await billing.planCount();
        const tx = billing.connect(customer).subscribe(planId);
        await expect(tx).to.emit(billing, "Charged");
        await expect(tx).to.emit(billing, "SubscriptionCompleted").withArgs(1n, merchantId, customer.address);
        expect(await statusOf(billing, firstRef(f))).to.equal(Status.Completed);
        expect(await billing.isDue(firstRef(f))).to.equal(false);
      });

      it("reverts with the token's error and creates nothing when the allowance is short", async function () {
        const { billing, token, customer, planId } = await loadFixture(readyToSubscribeFixture);
        const billingAddress = await billing.getAddress();
        await token.connect(customer).approve(billingAddress, AMOUNT - 1n);
        await expect(billing.connect(customer).subscribe(planId))
          .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
          .withArgs(billingAddress, AMOUNT - 1n, AMOUNT);
        expect(await billing.subscriptionCount()).to.equal(0n);
      });

      it("reverts with BillingUnknownPlan for an unknown plan", async function () {
        const { billing, customer } = await loadFixture(readyToSubscribeFixture);
        await expect(billing.connect(customer).subscribe(0n))
          .to.be.revertedWithCustomError(billing, "BillingUnknownPlan")
          .withArgs(0n);
        await expect(billing.connect(customer).subscribe(4n))
          .to.be.revertedWithCustomError(billing, "BillingUnknownPlan")
          .withArgs(4n);
      });

      it("reverts with BillingPaused while globally paused", async function () {
        const { billing, safe, customer, planId } = await loadFixture(readyToSubscribeFixture);
        await billing.connect(safe).pause();
        await expect(billing.connect(customer).subscribe(planId)).to.be.revertedWithCustomError(
          billing,
          "BillingPaused",
        );
      });
    });

    describe("subscribeWithPermit", function () {
      /** A funded customer who has approved nothing, and a signed permit for three periods. */
      async function permitFixture() {
        const base = await merchantWithPlanFixture();
        const { billing, token, safe, customer } = base;
        await token.connect(safe).mint(customer.address, CUSTOMER_FUNDS);
        const value = AMOUNT * 3n;
        const deadline = BigInt(await time.latest()) + 3600n;
        const signature = await signPermit(token, customer, await billing.getAddress(), value, deadline);
        return { ...base, value, deadline, signature };
      }

      it("approves and subscribes in one transaction", async function () {
        const f = await loadFixture(permitFixture);
        const { billing, token, customer, beneficiary, merchantId, planId, value, deadline, signature } = f;
        const { v, r, s } = signature;
        const tx = billing.connect(customer).subscribeWithPermit(planId, value, deadline, v, r, s);
        await expect(tx).to.emit(billing, "Subscribed");
        await expect(tx).to.emit(billing, "Charged").withArgs(1n, merchantId, AMOUNT, anyUint);
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
        expect(await token.allowance(customer.address, await billing.getAddress())).to.equal(value - AMOUNT);
        expect(await token.nonces(customer.address)).to.equal(1n);
        expect(await statusOf(billing, firstRef(f))).to.equal(Status.Active);
      });

      it("tolerates a front-run permit when the allowance it set is in place", async function () {
        const f = await loadFixture(permitFixture);
        const { billing, token, customer, outsider, planId, value, deadline, signature } = f;
        const { v, r, s } = signature;
        await token.connect(outsider).permit(customer.address, await billing.getAddress(), value, deadline, v, r, s);
        await expect(billing.connect(customer).subscribeWithPermit(planId, value, deadline, v, r, s))
          .to.emit(billing, "Subscribed")
          .withArgs(1n, anyUint, customer.address, planId, anyValue, AMOUNT, PERIOD, anyUint, 0n, MAX_BACKLOG);
        expect(await statusOf(billing, firstRef(f))).to.equal(Status.Active);
      });

      it("reverts with BillingPermitFailed when the permit fails and the allowance is short", async function () {
        const { billing, customer, planId, value, deadline, signature } = await loadFixture(permitFixture);
        const { v, r, s } = signature;
        await expect(billing.connect(customer).subscribeWithPermit(planId, value + 1n, deadline, v, r, s))
          .to.be.revertedWithCustomError(billing, "BillingPermitFailed")
          .withArgs(planId);
      });

      it("reverts with BillingPermitFailed when the permit has expired and nothing is approved", async function () {
        const { billing, token, customer, planId } = await loadFixture(permitFixture);
        const deadline = BigInt(await time.latest());
        const { v, r, s } = await signPermit(token, customer, await billing.getAddress(), AMOUNT, deadline);
        await expect(billing.connect(customer).subscribeWithPermit(planId, AMOUNT, deadline, v, r, s))
          .to.be.revertedWithCustomError(billing, "BillingPermitFailed")
          .withArgs(planId);
      });

      it("reverts with BillingUnknownPlan for an unknown plan", async function () {
        const { billing, customer, value, deadline, signature } = await loadFixture(permitFixture);
        const { v, r, s } = signature;
        await expect(billing.connect(customer).subscribeWithPermit(99n, value, deadline, v, r, s))
          .to.be.revertedWithCustomError(billing, "BillingUnknownPlan")
          .withArgs(99n);
      });

      it("reverts with BillingPlanInactive for a closed plan", async function () {
        const { billing, merchantAdmin, customer, planId, value, deadline, signature } =
          await loadFixture(permitFixture);
        await billing.connect(merchantAdmin).setPlanActive(planId, false);
        const { v, r, s } = signature;
        await expect(billing.connect(customer).subscribeWithPermit(planId, value, deadline, v, r, s))
          .to.be.revertedWithCustomError(billing, "BillingPlanInactive")
          .withArgs(planId);
      });

      it("reverts with BillingPaused while globally paused", async function () {
        const { billing, safe, customer, planId, value, deadline, signature } = await loadFixture(permitFixture);
        await billing.connect(safe).pause();
        const { v, r, s } = signature;
        await expect(
          billing.connect(customer).subscribeWithPermit(planId, value, deadline, v, r, s),
        ).to.be.revertedWithCustomError(billing, "BillingPaused");
      });
    });

    describe("cancel", function () {
      it("lets the customer cancel, emitting SubscriptionCancelled", async function () {
        const { billing, customer, merchantId, ref } = await loadFixture(subscribedFixture);
        await expect(billing.connect(customer).cancel(ref))
          .to.emit(billing, "SubscriptionCancelled")
          .withArgs(ref.id, merchantId, customer.address, customer.address);
        expect(await statusOf(billing, ref)).to.equal(Status.Cancelled);
      });

      it("lets the merchant admin cancel", async function () {
        const { billing, merchantAdmin, customer, merchantId, ref } = await loadFixture(subscribedFixture);
        await expect(billing.connect(merchantAdmin).cancel(ref))
          .to.emit(billing, "SubscriptionCancelled")
          .withArgs(ref.id, merchantId, customer.address, merchantAdmin.address);
        expect(await statusOf(billing, ref)).to.equal(Status.Cancelled);
      });

      it("stops every later charge", async function () {
        const { billing, customer, operator, ref } = await loadFixture(dueFixture);
        await billing.connect(customer).cancel(ref);
        expect(await billing.isDue(ref)).to.equal(false);
        await expect(billing.connect(operator).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Cancelled);
      });

      it("cancels a past-due subscription", async function () {
        const { billing, customer, ref } = await loadFixture(pastDueFixture);
        await expect(billing.connect(customer).cancel(ref)).to.emit(billing, "SubscriptionCancelled");
        expect(await statusOf(billing, ref)).to.equal(Status.Cancelled);
      });

      it("works while globally paused", async function () {
        const { billing, safe, customer, ref } = await loadFixture(subscribedFixture);
        await billing.connect(safe).pause();
        await expect(billing.connect(customer).cancel(ref)).to.emit(billing, "SubscriptionCancelled");
      });

      it("reverts with BillingUnauthorizedCanceller for an operator", async function () {
        const { billing, operator, ref } = await loadFixture(subscribedFixture);
        await expect(billing.connect(operator).cancel(ref))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCanceller")
          .withArgs(ref.id, operator.address);
      });

      it("reverts with BillingUnauthorizedCanceller for another customer or another merchant's admin", async function () {
        const { billing, customers, otherAdmin, ref } = await loadFixture(twoMerchantsFixture);
        await expect(billing.connect(customers[1]).cancel(ref))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCanceller")
          .withArgs(ref.id, customers[1].address);
        await expect(billing.connect(otherAdmin).cancel(ref))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCanceller")
          .withArgs(ref.id, otherAdmin.address);
        // Naming itself as the customer only makes the ref address nothing.
        await expect(billing.connect(customers[1]).cancel(withTerms(ref, { customer: customers[1].address })))
          .to.be.revertedWithCustomError(billing, "BillingUnknownSubscription")
          .withArgs(ref.id);
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
      });

      it("reverts with BillingSubscriptionNotActive when already cancelled", async function () {
        const { billing, customer, ref } = await loadFixture(subscribedFixture);
        await billing.connect(customer).cancel(ref);
        await expect(billing.connect(customer).cancel(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Cancelled);
      });

      it("reverts with BillingUnknownSubscription for an unknown id or a ref with other terms", async function () {
        const { billing, customer, ref } = await loadFixture(subscribedFixture);
        for (const wrong of [withTerms(ref, { id: 99n }), withTerms(ref, { amount: AMOUNT * 2n })]) {
          await expect(billing.connect(customer).cancel(wrong))
            .to.be.revertedWithCustomError(billing, "BillingUnknownSubscription")
            .withArgs(wrong.id);
        }
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
      });
    });

    describe("views", function () {
      it("report nothing for an unknown subscription", async function () {
        const { billing, ref } = await loadFixture(subscribedFixture);
        const unknown = withTerms(ref, { id: 99n });
        const sub = await billing.getSubscription(unknown);
        expect(sub.merchantId).to.equal(0n);
        expect(sub.status).to.equal(Status.None);
        expect(sub.nextChargeAt).to.equal(0n);
        expect(sub.pastDueClock).to.equal(0n);
        expect(await billing.isDue(unknown)).to.equal(false);
        expect(await billing.graceRemaining(unknown)).to.equal(0n);
      });

      it("isDue turns true exactly at nextChargeAt", async function () {
        const { billing, ref } = await loadFixture(subscribedFixture);
        const next = await nextChargeAt(billing, ref);
        await time.increaseTo(next - 1n);
        expect(await billing.isDue(ref)).to.equal(false);
        await time.increaseTo(next);
        expect(await billing.isDue(ref)).to.equal(true);
      });
    });
  });

  describe("charge", function () {
    it("pays one period to the beneficiary and moves the schedule one period on", async function () {
      const { billing, token, operator, customer, beneficiary, merchantId, ref } = await loadFixture(dueFixture);
      const due = await nextChargeAt(billing, ref);
      expect(await billing.connect(operator).charge.staticCall(ref)).to.equal(true);
      const tx = billing.connect(operator).charge(ref);
      await expect(tx)
        .to.emit(billing, "Charged")
        .withArgs(ref.id, merchantId, AMOUNT, due + PERIOD);
      await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary, operator], [-AMOUNT, AMOUNT, 0n]);
      const sub = await billing.getSubscription(ref);
      expect(sub.nextChargeAt).to.equal(due + PERIOD);
      expect(sub.chargeCount).to.equal(2n);
      expect(sub.status).to.equal(Status.Active);
    });

    it("lets the merchant admin charge its own subscriptions", async function () {
      const { billing, merchantAdmin, ref } = await loadFixture(dueFixture);
      await expect(billing.connect(merchantAdmin).charge(ref)).to.emit(billing, "Charged");
    });

    it("reverts with BillingNotDue one second before the due time and charges at it", async function () {
      const { billing, operator, ref } = await loadFixture(subscribedFixture);
      const due = await nextChargeAt(billing, ref);
      await time.setNextBlockTimestamp(due - 1n);
      await expect(billing.connect(operator).charge(ref))
        .to.be.revertedWithCustomError(billing, "BillingNotDue")
        .withArgs(ref.id, due);
      await time.setNextBlockTimestamp(due);
      await expect(billing.connect(operator).charge(ref)).to.emit(billing, "Charged");
    });

    it("reverts with BillingNotDue on a second charge in the same period", async function () {
      const { billing, operator, ref } = await loadFixture(dueFixture);
      await billing.connect(operator).charge(ref);
      await expect(billing.connect(operator).charge(ref))
        .to.be.revertedWithCustomError(billing, "BillingNotDue")
        .withArgs(ref.id, await nextChargeAt(billing, ref));
    });

    it("lets the customer pay its own due period", async function () {
      const { billing, token, customer, beneficiary, ref } = await loadFixture(dueFixture);
      const tx = billing.connect(customer).charge(ref);
      await expect(tx).to.emit(billing, "Charged");
      await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
    });

    it("reverts with BillingUnauthorizedCharger for an account that is neither operator, merchant admin nor the customer", async function () {
      const { billing, outsider, customers, ref } = await loadFixture(dueFixture);
      for (const caller of [outsider, customers[1]]) {
        await expect(billing.connect(caller).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
          .withArgs(ref.id, caller.address);
      }
    });

    it("reverts with BillingUnauthorizedCharger for another merchant's admin", async function () {
      const { billing, otherAdmin, ref } = await loadFixture(twoMerchantsFixture);
      await time.increaseTo(await nextChargeAt(billing, ref));
      await expect(billing.connect(otherAdmin).charge(ref))
        .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
        .withArgs(ref.id, otherAdmin.address);
    });

    it("reverts with BillingUnauthorizedCharger once the operator is revoked", async function () {
      const { billing, registry, guardian, operator, ref } = await loadFixture(dueFixture);
      await registry.connect(guardian).revokeOperators([operator.address]);
      await expect(billing.connect(operator).charge(ref))
        .to.be.revertedWithCustomError(billing, "BillingUnauthorizedCharger")
        .withArgs(ref.id, operator.address);
    });

    it("reverts with BillingUnknownSubscription for an unknown id or a ref with another customer, amount or token", async function () {
      const { billing, token, operator, customers, outsider, ref } = await loadFixture(dueFixture);
      const other = customers[1].address;
      for (const wrong of [
        withTerms(ref, { id: 0n }),
        withTerms(ref, { customer: other }),
        withTerms(ref, { amount: AMOUNT * 2n }),
        withTerms(ref, { token: outsider.address }),
      ]) {
        await expect(billing.connect(operator).charge(wrong))
          .to.be.revertedWithCustomError(billing, "BillingUnknownSubscription")
          .withArgs(wrong.id);
      }
      expect(await token.balanceOf(other)).to.equal(CUSTOMER_FUNDS - AMOUNT);
    });

    it("reverts with BillingPaused while globally paused", async function () {
      const { billing, safe, operator, ref } = await loadFixture(dueFixture);
      await billing.connect(safe).pause();
      await expect(billing.connect(operator).charge(ref)).to.be.revertedWithCustomError(billing, "BillingPaused");
    });

    describe("anchored schedule", function () {
      it("catches up a late subscription one period per charge, never more than amount x periods elapsed", async function () {
        const { billing, token, operator, customer, merchantId, ref } = await loadFixture(subscribedFixture);
        const start = (await nextChargeAt(billing, ref)) - PERIOD;
        const before = await token.balanceOf(customer.address);
        // Three more periods have started (indices 1, 2, 3), and we are half-way through the last one.
        await time.increaseTo(start + 3n * PERIOD + PERIOD / 2n);
        for (const periodIndex of [1n, 2n, 3n]) {
          await expect(billing.connect(operator).charge(ref))
            .to.emit(billing, "Charged")
            .withArgs(ref.id, merchantId, AMOUNT, start + (periodIndex + 1n) * PERIOD);
          expect((await billing.getSubscription(ref)).chargeCount).to.equal(periodIndex + 1n);
        }
        await expect(billing.connect(operator).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingNotDue")
          .withArgs(ref.id, start + 4n * PERIOD);
        expect(before - (await token.balanceOf(customer.address))).to.equal(3n * AMOUNT);
        expect((await billing.getSubscription(ref)).chargeCount).to.equal(4n);
      });

      it("keeps the due times anchored to the start however late each charge is", async function () {
        const { billing, operator, ref } = await loadFixture(subscribedFixture);
        const start = (await nextChargeAt(billing, ref)) - PERIOD;
        await time.increaseTo(start + PERIOD + 10n * DAY);
        await billing.connect(operator).charge(ref);
        expect(await nextChargeAt(billing, ref)).to.equal(start + 2n * PERIOD);
      });
    });

    describe("trial plans", function () {
      it("charges period 0 at the end of the trial, then every period", async function () {
        const { billing, token, safe, operator, customer, beneficiary, merchantId, trialPlanId } =
          await loadFixture(merchantWithPlanFixture);
        await fundAndApprove(token, safe, customer, await billing.getAddress());
        const ref = await subscribe(billing, customer, trialPlanId);
        const trialEnd = await nextChargeAt(billing, ref);
        await expect(billing.connect(operator).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingNotDue")
          .withArgs(ref.id, trialEnd);

        await time.setNextBlockTimestamp(trialEnd);
        const tx = billing.connect(operator).charge(ref);
        await expect(tx)
          .to.emit(billing, "Charged")
          .withArgs(ref.id, merchantId, AMOUNT, trialEnd + PERIOD);
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
        expect((await billing.getSubscription(ref)).chargeCount).to.equal(1n);
      });
    });

    describe("maxCharges", function () {
      it("completes the subscription when the last allowed period is paid", async function () {
        const { billing, token, safe, operator, customer, merchantId, cappedPlanId } =
          await loadFixture(merchantWithPlanFixture);
        await fundAndApprove(token, safe, customer, await billing.getAddress());
        const ref = await subscribe(billing, customer, cappedPlanId);
        const start = (await nextChargeAt(billing, ref)) - PERIOD;
        // Periods 1..10 have started; beyond the backlog of 3, periods 1..7 are forgiven at the first charge.
        await time.increaseTo(start + 10n * PERIOD);

        const first = billing.connect(operator).charge(ref);
        await expect(first)
          .to.emit(billing, "Charged")
          .withArgs(ref.id, merchantId, AMOUNT, start + 9n * PERIOD);
        await expect(first).not.to.emit(billing, "SubscriptionCompleted");
        const last = billing.connect(operator).charge(ref);
        await expect(last)
          .to.emit(billing, "Charged")
          .withArgs(ref.id, merchantId, AMOUNT, start + 10n * PERIOD);
        expect((await billing.getSubscription(ref)).chargeCount).to.equal(MAX_CHARGES);
        await expect(last).to.emit(billing, "SubscriptionCompleted").withArgs(ref.id, merchantId, customer.address);
        expect(await statusOf(billing, ref)).to.equal(Status.Completed);
        expect(await billing.isDue(ref)).to.equal(false);
        await expect(billing.connect(operator).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Completed);
        expect(CUSTOMER_FUNDS - (await token.balanceOf(customer.address))).to.equal(MAX_CHARGES * AMOUNT);
      });

      it("completes a one-charge trial plan at its first charge", async function () {
        const { billing, token, safe, merchantAdmin, operator, customer, merchantId } =
          await loadFixture(merchantWithPlanFixture);
        await fundAndApprove(token, safe, customer, await billing.getAddress());
        await billing
          .connect(merchantAdmin)
          .createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, TRIAL, 1n, MAX_BACKLOG);
        const ref = await subscribe(billing, customer, await billing.planCount());
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
        await time.increaseTo(await nextChargeAt(billing, ref));
        const tx = billing.connect(operator).charge(ref);
        await expect(tx).to.emit(billing, "Charged").withArgs(ref.id, merchantId, AMOUNT, anyUint);
        await expect(tx).to.emit(billing, "SubscriptionCompleted").withArgs(ref.id, merchantId, customer.address);
        expect(await statusOf(billing, ref)).to.equal(Status.Completed);
      });

      it("completes instead of reverting when the next period would pass the uint40 clock", async function () {
        const { billing, token, safe, merchantAdmin, operator, customers, merchantId } =
          await loadFixture(merchantWithPlanFixture);
        // A 2^31-second period started 1.5 periods before the end of the 40-bit clock: period 1 is due before its
        // end, period 2 would start after it.
        const period = 2n ** 31n;
        await billing
          .connect(merchantAdmin)
          .createPlan(merchantId, await token.getAddress(), AMOUNT, period, 0n, 0n, MAX_BACKLOG);
        await time.increaseTo(2n ** 40n - (3n * period) / 2n);
        const longRefs: SubscriptionRef[] = [];
        for (const customer of customers) {
          await fundAndApprove(token, safe, customer, await billing.getAddress());
          longRefs.push(await subscribe(billing, customer, await billing.planCount()));
        }
        const dueAt = await nextChargeAt(billing, longRefs[2]);
        await time.increaseTo(dueAt);

        // Alone, with charge...
        await expect(billing.connect(operator).charge(longRefs[0]))
          .to.emit(billing, "SubscriptionCompleted")
          .withArgs(longRefs[0].id, merchantId, customers[0].address);
        // ... and in a batch, where the other item is charged too.
        const tx = billing.connect(operator).chargeMany([longRefs[1], longRefs[2]]);
        for (const [i, ref] of longRefs.slice(1).entries()) {
          await expect(tx)
            .to.emit(billing, "SubscriptionCompleted")
            .withArgs(ref.id, merchantId, customers[i + 1].address);
        }
        await expect(tx).to.emit(billing, "Charged").withArgs(longRefs[1].id, merchantId, AMOUNT, anyUint);
        for (const id of longRefs) {
          const sub = await billing.getSubscription(id);
          expect([sub.status, sub.chargeCount]).to.deep.equal([Status.Completed, 2n]);
          expect(sub.nextChargeAt).to.be.lessThanOrEqual(dueAt);
        }
      });

      it("charges the terms copied at subscribe time even if the plan's stored terms change", async function () {
        const { billing, token, operator, customer, beneficiary, merchantId, planId, ref } =
          await loadFixture(dueFixture);
        // Plans have no setter for their terms; a future version might. Rewrite the plan in storage to prove the
        // subscription does not read it: amount (uint96 above the token address) tripled, period halved.
        const slot = BigInt(
          ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "uint256"], [planId, PLANS_SLOT])),
        );
        const address = await billing.getAddress();
        const plan = await billing.getPlan(planId);
        const word0 = BigInt(await ethers.provider.getStorage(address, slot));
        const word1 = BigInt(await ethers.provider.getStorage(address, slot + 1n));
        expect(word0 & ((1n << 160n) - 1n)).to.equal(BigInt(await token.getAddress()), "storage layout changed");
        expect(word1 & ((1n << 96n) - 1n)).to.equal(AMOUNT, "storage layout changed");
        const periodMask = ((1n << 32n) - 1n) << 192n;
        await networkHelpers.setStorageAt(address, slot, (word0 & ~periodMask) | ((PERIOD / 2n) << 192n));
        await networkHelpers.setStorageAt(address, slot + 1n, (word1 & ~((1n << 96n) - 1n)) | (AMOUNT * 3n));
        expect((await billing.getPlan(planId)).amount).to.equal(AMOUNT * 3n);
        expect((await billing.getPlan(planId)).period).to.equal(plan.period / 2n);

        const before = await billing.getSubscription(ref);
        const tx = billing.connect(operator).charge(ref);
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
        await expect(tx)
          .to.emit(billing, "Charged")
          .withArgs(ref.id, merchantId, AMOUNT, before.nextChargeAt + PERIOD);
        const after = await billing.getSubscription(ref);
        expect([after.period, after.chargeCount]).to.deep.equal([PERIOD, 2n]);
        // The plan's new amount is not the subscription's: a ref carrying it addresses nothing.
        expect(await statusOf(billing, withTerms(ref, { amount: AMOUNT * 3n }))).to.equal(Status.None);
      });
    });

    describe("failed charges", function () {
      it("marks the subscription past due when the balance is short, without moving the schedule", async function () {
        const { billing, token, operator, customer, beneficiary, merchantId, ref } = await loadFixture(brokeFixture);
        const before = await billing.getSubscription(ref);
        expect(await billing.connect(operator).charge.staticCall(ref)).to.equal(false);
        const now = await nextBlockAt();
        const tx = billing.connect(operator).charge(ref);
        await expect(tx)
          .to.emit(billing, "ChargeFailed")
          .withArgs(ref.id, merchantId, customer.address, before.nextChargeAt);
        await expect(tx).not.to.emit(billing, "Charged");
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [0n, 0n]);
        const after = await billing.getSubscription(ref);
        expect(after.status).to.equal(Status.PastDue);
        expect(after.nextChargeAt).to.equal(before.nextChargeAt);
        expect(after.chargeCount).to.equal(before.chargeCount);
        expect(after.pastDueClock).to.equal(now);
        expect(await billing.billingClock(merchantId)).to.equal(now);
        expect(await billing.graceRemaining(ref)).to.equal(GRACE_PERIOD);
        expect(await billing.isDue(ref)).to.equal(true);
      });

      it("marks the subscription past due when the allowance is short", async function () {
        const { billing, token, operator, customer, merchantId, ref } = await loadFixture(dueFixture);
        await token.connect(customer).approve(await billing.getAddress(), AMOUNT - 1n);
        const due = await nextChargeAt(billing, ref);
        const now = await nextBlockAt();
        await expect(billing.connect(operator).charge(ref))
          .to.emit(billing, "ChargeFailed")
          .withArgs(ref.id, merchantId, customer.address, due);
        expect(await statusOf(billing, ref)).to.equal(Status.PastDue);
        expect((await billing.getSubscription(ref)).pastDueClock).to.equal(now);
      });

      it("keeps the first past-due clock on later failures", async function () {
        const { billing, operator, customer, merchantId, ref, pastDueSince } = await loadFixture(pastDueFixture);
        const due = await nextChargeAt(billing, ref);
        await time.increase(DAY);
        await expect(billing.connect(operator).charge(ref))
          .to.emit(billing, "ChargeFailed")
          .withArgs(ref.id, merchantId, customer.address, due);
        expect((await billing.getSubscription(ref)).pastDueClock).to.equal(pastDueSince);
        const elapsed = BigInt(await time.latest()) - pastDueSince;
        expect(elapsed).to.be.greaterThan(DAY);
        expect(await billing.graceRemaining(ref)).to.equal(GRACE_PERIOD - elapsed);
      });

      it("recovers to active when a retry within the grace period succeeds", async function () {
        const { billing, token, operator, customer, outsider, merchantId, ref } = await loadFixture(pastDueFixture);
        const due = await nextChargeAt(billing, ref);
        await token.connect(outsider).transfer(customer.address, AMOUNT);
        await expect(billing.connect(operator).charge(ref))
          .to.emit(billing, "Charged")
          .withArgs(ref.id, merchantId, AMOUNT, due + PERIOD);
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
        expect((await billing.getSubscription(ref)).chargeCount).to.equal(2n);
        expect(await billing.graceRemaining(ref)).to.equal(0n);
      });

      it("starts a new grace period when a recovered subscription fails again", async function () {
        const { billing, token, operator, customer, outsider, merchantId, ref, pastDueSince } =
          await loadFixture(pastDueFixture);
        await token.connect(outsider).transfer(customer.address, AMOUNT);
        await billing.connect(operator).charge(ref);
        const due = await nextChargeAt(billing, ref);
        await time.increaseTo(due);
        const now = await nextBlockAt();
        await expect(billing.connect(operator).charge(ref))
          .to.emit(billing, "ChargeFailed")
          .withArgs(ref.id, merchantId, customer.address, due);
        expect(now).to.be.greaterThan(pastDueSince + GRACE_PERIOD);
        expect((await billing.getSubscription(ref)).pastDueClock).to.equal(now);
        expect(await billing.isDue(ref)).to.equal(true);
      });

      it("still collects a retry one second before the grace period ends", async function () {
        const { billing, token, operator, customer, outsider, ref, pastDueSince } = await loadFixture(pastDueFixture);
        await token.connect(outsider).transfer(customer.address, AMOUNT);
        await time.setNextBlockTimestamp(pastDueSince + GRACE_PERIOD - 1n);
        await expect(billing.connect(operator).charge(ref)).to.emit(billing, "Charged");
      });

      it("lapses the subscription at the end of the grace period, taking nothing", async function () {
        const { billing, token, operator, customer, outsider, beneficiary, merchantId, ref, pastDueSince } =
          await loadFixture(pastDueFixture);
        await token.connect(outsider).transfer(customer.address, AMOUNT);
        await time.increaseTo(pastDueSince + GRACE_PERIOD - 1n);
        expect(await billing.isDue(ref)).to.equal(true);
        await time.increaseTo(pastDueSince + GRACE_PERIOD);
        expect(await billing.isDue(ref)).to.equal(false);
        expect(await billing.graceRemaining(ref)).to.equal(0n);

        expect(await billing.connect(operator).charge.staticCall(ref)).to.equal(false);
        const tx = billing.connect(operator).charge(ref);
        await expect(tx).to.emit(billing, "SubscriptionLapsed").withArgs(ref.id, merchantId, customer.address);
        await expect(tx).not.to.emit(billing, "Charged");
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [0n, 0n]);
        expect(await statusOf(billing, ref)).to.equal(Status.Lapsed);
        await expect(billing.connect(operator).charge(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Lapsed);
        await expect(billing.connect(customer).cancel(ref))
          .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
          .withArgs(ref.id, Status.Lapsed);
      });
    });
  });

  describe("chargeMany", function () {
    it("charges every due subscription and returns how many were paid", async function () {
      const { billing, token, operator, customers, beneficiary, merchantId, refs } =
        await loadFixture(subscribedFixture);
      await time.increaseTo(await nextChargeAt(billing, refs[2]));
      const dues = await Promise.all(refs.map((ref) => nextChargeAt(billing, ref)));
      expect(await billing.connect(operator).chargeMany.staticCall(refs)).to.equal(3n);
      const tx = billing.connect(operator).chargeMany(refs);
      for (const [i, ref] of refs.entries()) {
        await expect(tx)
          .to.emit(billing, "Charged")
          .withArgs(ref.id, merchantId, AMOUNT, dues[i] + PERIOD);
      }
      await expect(tx).to.changeTokenBalances(
        ethers,
        token,
        [...customers, beneficiary],
        [-AMOUNT, -AMOUNT, -AMOUNT, 3n * AMOUNT],
      );
    });

    it("reports each item that cannot be charged and goes on with the batch", async function () {
      const { billing, token, operator, customers, outsider, merchantId, refs } = await loadFixture(subscribedFixture);
      const [paying, broke, cancelled] = refs;
      await billing.connect(customers[2]).cancel(cancelled);
      await time.increaseTo(await nextChargeAt(billing, refs[2]));
      await token.connect(customers[1]).transfer(outsider.address, await token.balanceOf(customers[1].address));
      const brokeDue = await nextChargeAt(billing, broke);
      const now = await nextBlockAt();

      const unknown = withTerms(paying, { id: 999n });
      const tx = billing.connect(operator).chargeMany([unknown, paying, broke, cancelled, paying]);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(999n, SkipReason.UnknownSubscription);
      await expect(tx).to.emit(billing, "Charged").withArgs(paying.id, merchantId, AMOUNT, anyUint);
      await expect(tx).to.emit(billing, "ChargeFailed").withArgs(broke.id, merchantId, customers[1].address, brokeDue);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(cancelled.id, SkipReason.NotActive);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(paying.id, SkipReason.NotDue);
      expect(await statusOf(billing, broke)).to.equal(Status.PastDue);
      expect((await billing.getSubscription(broke)).pastDueClock).to.equal(now);
      expect((await billing.getSubscription(paying)).chargeCount).to.equal(2n);
    });

    it("pays a repeated id twice only when two periods are due", async function () {
      const { billing, operator, ref } = await loadFixture(subscribedFixture);
      const start = (await nextChargeAt(billing, ref)) - PERIOD;
      await time.increaseTo(start + 2n * PERIOD);
      expect(await billing.connect(operator).chargeMany.staticCall([ref, ref, ref])).to.equal(2n);
    });

    it("skips with MerchantPaused the subscriptions of a paused merchant", async function () {
      const { billing, otherAdmin, operator, ref, otherRef, otherMerchantId } = await loadFixture(twoMerchantsFixture);
      await billing.connect(otherAdmin).setMerchantPaused(otherMerchantId, true);
      await time.increaseTo(await nextChargeAt(billing, otherRef));
      const tx = billing.connect(operator).chargeMany([otherRef, ref]);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(otherRef.id, SkipReason.MerchantPaused);
      await expect(tx).to.emit(billing, "Charged").withArgs(ref.id, 1n, AMOUNT, anyUint);
    });

    it("lets a merchant admin charge its own subscriptions and skips others' with Unauthorized", async function () {
      const { billing, otherAdmin, ref, otherRef, otherMerchantId } = await loadFixture(twoMerchantsFixture);
      await time.increaseTo(await nextChargeAt(billing, otherRef));
      const tx = billing.connect(otherAdmin).chargeMany([ref, otherRef]);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(ref.id, SkipReason.Unauthorized);
      await expect(tx).to.emit(billing, "Charged").withArgs(otherRef.id, otherMerchantId, AMOUNT, anyUint);
      expect((await billing.getSubscription(ref)).chargeCount).to.equal(1n);
    });

    it("lets a customer settle its own items and skips the others with Unauthorized", async function () {
      const { billing, token, customer, beneficiary, ref, refs } = await loadFixture(dueFixture);
      await time.increaseTo(await nextChargeAt(billing, refs[2]));
      const tx = billing.connect(customer).chargeMany([refs[1], ref, refs[2]]);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(refs[1].id, SkipReason.Unauthorized);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(refs[2].id, SkipReason.Unauthorized);
      await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
    });

    it("reverts with BillingNotAnOperator for an outsider, who may charge none of the items", async function () {
      const { billing, token, outsider, customers, beneficiary, refs } = await loadFixture(dueFixture);
      await expect(billing.connect(outsider).chargeMany(refs))
        .to.be.revertedWithCustomError(billing, "BillingNotAnOperator")
        .withArgs(outsider.address);
      // An unknown ref is no more the outsider's than the others': a batch of them is refused as a whole too.
      const unknown = withTerms(refs[0], { id: 99n });
      await expect(billing.connect(outsider).chargeMany([unknown, ...refs]))
        .to.be.revertedWithCustomError(billing, "BillingNotAnOperator")
        .withArgs(outsider.address);
      await expect(billing.connect(outsider).chargeMany([unknown]))
        .to.be.revertedWithCustomError(billing, "BillingNotAnOperator")
        .withArgs(outsider.address);
      for (const customer of customers) {
        expect(await token.balanceOf(customer.address)).to.equal(CUSTOMER_FUNDS - AMOUNT);
      }
      expect(await token.balanceOf(beneficiary.address)).to.equal(3n * AMOUNT);
    });

    it("skips an unknown ref in a customer's batch and still settles the customer's own item", async function () {
      const { billing, token, customer, beneficiary, ref, refs } = await loadFixture(dueFixture);
      const unknown = withTerms(refs[0], { id: 99n });
      const tx = billing.connect(customer).chargeMany([unknown, ref]);
      await expect(tx).to.emit(billing, "ChargeSkipped").withArgs(99n, SkipReason.UnknownSubscription);
      await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
    });

    it("lapses a past-due subscription beyond the grace period", async function () {
      const { billing, operator, customer, merchantId, ref, pastDueSince } = await loadFixture(pastDueFixture);
      await time.increaseTo(pastDueSince + GRACE_PERIOD);
      await expect(billing.connect(operator).chargeMany([ref]))
        .to.emit(billing, "SubscriptionLapsed")
        .withArgs(ref.id, merchantId, customer.address);
      expect(await statusOf(billing, ref)).to.equal(Status.Lapsed);
    });

    it("returns zero for an empty batch, from an operator or anyone", async function () {
      const { billing, operator, outsider } = await loadFixture(dueFixture);
      expect(await billing.connect(operator).chargeMany.staticCall([])).to.equal(0n);
      expect(await billing.connect(outsider).chargeMany.staticCall([])).to.equal(0n);
    });

    it("reverts with BillingPaused while globally paused", async function () {
      const { billing, safe, operator, refs } = await loadFixture(dueFixture);
      await billing.connect(safe).pause();
      await expect(billing.connect(operator).chargeMany(refs)).to.be.revertedWithCustomError(billing, "BillingPaused");
    });
  });

  describe("pause and unpause", function () {
    it("lets the owner pause and unpause everything", async function () {
      const { billing, safe, operator, ref } = await loadFixture(dueFixture);
      await expect(billing.connect(safe).pause()).to.emit(billing, "Paused").withArgs(safe.address);
      expect(await billing.paused()).to.equal(true);
      expect(await billing.isDue(ref)).to.equal(false);
      await expect(billing.connect(safe).unpause()).to.emit(billing, "Unpaused").withArgs(safe.address);
      expect(await billing.isDue(ref)).to.equal(true);
      await expect(billing.connect(operator).charge(ref)).to.emit(billing, "Charged");
    });

    it("reverts pause with OwnableUnauthorizedAccount for an operator or a merchant admin", async function () {
      const { billing, operator, merchantAdmin } = await loadFixture(dueFixture);
      for (const account of [operator, merchantAdmin]) {
        await expect(billing.connect(account).pause())
          .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
          .withArgs(account.address);
      }
    });

    it("reverts unpause with OwnableUnauthorizedAccount for an operator", async function () {
      const { billing, safe, operator } = await loadFixture(dueFixture);
      await billing.connect(safe).pause();
      await expect(billing.connect(operator).unpause())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(operator.address);
    });

    it("reverts with BillingPaused or BillingNotPaused when already in that state", async function () {
      const { billing, safe } = await loadFixture(dueFixture);
      await expect(billing.connect(safe).unpause()).to.be.revertedWithCustomError(billing, "BillingNotPaused");
      await billing.connect(safe).pause();
      await expect(billing.connect(safe).pause()).to.be.revertedWithCustomError(billing, "BillingPaused");
    });
  });

  describe("ownership", function () {
    it("transfers in two steps: the new owner must accept", async function () {
      const { billing, safe, outsider } = await loadFixture(deployBillingFixture);
      await expect(billing.connect(safe).transferOwnership(outsider.address))
        .to.emit(billing, "OwnershipTransferStarted")
        .withArgs(safe.address, outsider.address);
      expect(await billing.pendingOwner()).to.equal(outsider.address);
      await expect(billing.connect(safe).acceptOwnership())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(safe.address);
      await expect(billing.connect(outsider).acceptOwnership())
        .to.emit(billing, "OwnershipTransferred")
        .withArgs(safe.address, outsider.address);
      expect(await billing.owner()).to.equal(outsider.address);
      await expect(billing.connect(safe).pause())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(safe.address);
      await expect(billing.connect(outsider).pause()).to.emit(billing, "Paused");
    });

    it("reverts with BillingRenounceDisabled when the owner renounces", async function () {
      const { billing, safe } = await loadFixture(deployBillingFixture);
      await expect(billing.connect(safe).renounceOwnership()).to.be.revertedWithCustomError(
        billing,
        "BillingRenounceDisabled",
      );
    });

    it("reverts with OwnableUnauthorizedAccount when anyone else renounces", async function () {
      const { billing, outsider } = await loadFixture(deployBillingFixture);
      await expect(billing.connect(outsider).renounceOwnership())
        .to.be.revertedWithCustomError(billing, "OwnableUnauthorizedAccount")
        .withArgs(outsider.address);
    });
  });

  describe("tokens", function () {
    /** A plan billed in `contractName`, a funded and approving customer, and the charge of period 1 due. */
    async function deployMockPlan(contractName: "NoReturnToken" | "FalseReturnToken" | "FeeOnTransferToken") {
      const base = await merchantWithPlanFixture();
      const { billing, merchantAdmin, customer, merchantId } = base;
      const mock = await ethers.deployContract(contractName);
      const mockAddress = await mock.getAddress();
      await billing.connect(merchantAdmin).createPlan(merchantId, mockAddress, AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG);
      const planId = await billing.planCount();
      const erc20 = await ethers.getContractAt("BillingToken", mockAddress);
      await mock.getFunction("mint")(customer.address, CUSTOMER_FUNDS);
      await mock.connect(customer).getFunction("approve")(await billing.getAddress(), ethers.MaxUint256);
      /** The ref of the customer's latest subscription in the mock token. */
      const latestRef = async (): Promise<SubscriptionRef> => ({
        id: await billing.subscriptionCount(),
        customer: customer.address,
        amount: AMOUNT,
        token: mockAddress,
      });
      return { ...base, mock, erc20, planId, latestRef };
    }
    const noReturnFixture = () => deployMockPlan("NoReturnToken");
    const falseReturnFixture = () => deployMockPlan("FalseReturnToken");
    const feeOnTransferFixture = () => deployMockPlan("FeeOnTransferToken");

    describe("a token that returns no bool (USDT-style)", function () {
      it("subscribes and charges through SafeERC20", async function () {
        const { billing, erc20, operator, customer, beneficiary, planId, latestRef } =
          await loadFixture(noReturnFixture);
        await expect(billing.connect(customer).subscribe(planId)).to.changeTokenBalances(
          ethers,
          erc20,
          [customer, beneficiary],
          [-AMOUNT, AMOUNT],
        );
        const ref = await latestRef();
        await time.increaseTo(await nextChargeAt(billing, ref));
        await expect(billing.connect(operator).charge(ref)).to.changeTokenBalances(
          ethers,
          erc20,
          [customer, beneficiary],
          [-AMOUNT, AMOUNT],
        );
      });

      it("marks the subscription past due when the token reverts", async function () {
        const { billing, erc20, operator, customer, outsider, planId } = await loadFixture(noReturnFixture);
        const ref = await subscribe(billing, customer, planId);
        await erc20.connect(customer).transfer(outsider.address, await erc20.balanceOf(customer.address));
        await time.increaseTo(await nextChargeAt(billing, ref));
        await expect(billing.connect(operator).charge(ref)).to.emit(billing, "ChargeFailed");
        expect(await statusOf(billing, ref)).to.equal(Status.PastDue);
      });
      it("marks the subscription past due when the allowance runs out", async function () {
        const { billing, erc20, mock, operator, customer, planId } = await loadFixture(noReturnFixture);
        await mock.connect(customer).getFunction("approve")(await billing.getAddress(), AMOUNT + AMOUNT / 2n);
        const ref = await subscribe(billing, customer, planId);
        expect(await erc20.allowance(customer.address, await billing.getAddress())).to.equal(AMOUNT / 2n);
        await time.increaseTo(await nextChargeAt(billing, ref));
        await expect(billing.connect(operator).charge(ref)).to.emit(billing, "ChargeFailed");
        expect(await statusOf(billing, ref)).to.equal(Status.PastDue);
      });
    });

    describe("a token that returns false instead of reverting", function () {
      it("marks the subscription past due when transferFrom returns false", async function () {
        const { billing, erc20, operator, customer, outsider, beneficiary, planId } =
          await loadFixture(falseReturnFixture);
        const ref = await subscribe(billing, customer, planId);
        await erc20.connect(customer).transfer(outsider.address, await erc20.balanceOf(customer.address));
        await time.increaseTo(await nextChargeAt(billing, ref));
        const tx = billing.connect(operator).charge(ref);
        await expect(tx).to.emit(billing, "ChargeFailed");
        await expect(tx).to.changeTokenBalances(ethers, erc20, [customer, beneficiary], [0n, 0n]);
        expect(await statusOf(billing, ref)).to.equal(Status.PastDue);
      });

      it("reverts subscribe with SafeERC20FailedOperation when transferFrom returns false", async function () {
        const { billing, erc20, mock, customer, outsider, planId } = await loadFixture(falseReturnFixture);
        await erc20.connect(customer).transfer(outsider.address, await erc20.balanceOf(customer.address));
        await expect(billing.connect(customer).subscribe(planId))
          .to.be.revertedWithCustomError(billing, "SafeERC20FailedOperation")
          .withArgs(await mock.getAddress());
      });
    });

    describe("a fee-on-transfer token (unsupported, documented behaviour)", function () {
      it("debits the customer exactly the amount, never more; the beneficiary gets what the token delivers", async function () {
        const { billing, erc20, operator, customer, beneficiary, merchantId, planId, latestRef } =
          await loadFixture(feeOnTransferFixture);
        const fee = (AMOUNT * 100n) / 10_000n;
        await expect(billing.connect(customer).subscribe(planId)).to.changeTokenBalances(
          ethers,
          erc20,
          [customer, beneficiary],
          [-AMOUNT, AMOUNT - fee],
        );
        const ref = await latestRef();
        await time.increaseTo(await nextChargeAt(billing, ref));
        const tx = billing.connect(operator).charge(ref);
        await expect(tx).to.emit(billing, "Charged").withArgs(ref.id, merchantId, AMOUNT, anyUint);
        await expect(tx).to.changeTokenBalances(ethers, erc20, [customer, beneficiary], [-AMOUNT, AMOUNT - fee]);
      });
    });

    describe("a token without permit", function () {
      it("lets subscribeWithPermit go ahead when the allowance is already in place", async function () {
        const { billing, customer, planId } = await loadFixture(noReturnFixture);
        await expect(
          billing.connect(customer).subscribeWithPermit(planId, AMOUNT, 0n, 27, ethers.ZeroHash, ethers.ZeroHash),
        ).to.emit(billing, "Subscribed");
      });
    });
  });

  describe("areDue", function () {
    it("answers isDue for every id, in order, repeated and unknown ids included", async function () {
      const { billing, ref } = await loadFixture(subscribedFixture);
      expect(await billing.areDue([])).to.deep.equal([]);
      await time.increaseTo((await nextChargeAt(billing, ref)) - 1n);
      const unknown = withTerms(ref, { id: 99n });
      expect(await billing.areDue([ref, unknown])).to.deep.equal([false, false]);
      await time.increase(1n);
      expect(await billing.areDue([ref, unknown, ref])).to.deep.equal([true, false, true]);
    });

    it("counts a past-due subscription as due only within the grace period", async function () {
      const { billing, ref, pastDueSince } = await loadFixture(pastDueFixture);
      expect(await billing.areDue([ref])).to.deep.equal([true]);
      await time.increaseTo(pastDueSince + GRACE_PERIOD);
      expect(await billing.areDue([ref])).to.deep.equal([false]);
      expect(await billing.isDue(ref)).to.equal(false);
    });

    it("answers false for every id while the contract is paused", async function () {
      const { billing, safe, ref } = await loadFixture(dueFixture);
      expect(await billing.areDue([ref])).to.deep.equal([true]);
      await billing.connect(safe).pause();
      expect(await billing.areDue([ref, ref])).to.deep.equal([false, false]);
    });
  });
});
