// The eleven findings of the independent review behind contracts v2 (issue 11), one `describe` each. Every test here
// failed against contracts v1 (commit 38b6803) and passes against v2: each states the property v1 broke.
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { anyUint } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { expect } from "chai";

import {
  AMOUNT,
  CUSTOMER_FUNDS,
  DAY,
  GRACE_PERIOD,
  PERIOD,
  Status,
  type SubscriptionRef,
  deployBillingFixture,
  dueFixture,
  ethers,
  networkHelpers,
  nextChargeAt,
  signPermit,
  statusOf,
  subscribe,
  subscribedFixture,
} from "../fixtures.js";
import type { RecurringBilling } from "../../types/ethers-contracts/index.js";
import { expectBalanceChanges, snapshotBalances } from "./balances.js";

const { loadFixture, time } = networkHelpers;

/** Mirrors `HostileToken.Behaviour`. */
const Behaviour = { Honest: 0n, BurnAllGas: 1n, BurnGasThenTransfer: 2n, ReturnFalse: 3n, CallThenReturnFalse: 4n };

/** The per-transaction gas cap of Ethereum since EIP-7825, the most any keeper can give a batch. */
const TX_GAS_CAP = 2n ** 24n;

/** A subscription of `customer` to a plan of AMOUNT every PERIOD in HostileToken, created by `admin`'s merchant. */
async function hostilePlan(billing: RecurringBilling, admin: HardhatEthersSigner, customer: HardhatEthersSigner) {
  const hostile = await ethers.deployContract("HostileToken");
  const hostileAddress = await hostile.getAddress();
  await billing.connect(admin).registerMerchant(admin.address);
  const merchantId = await billing.merchantCount();
  await billing.connect(admin).createPlan(merchantId, hostileAddress, AMOUNT, PERIOD, 0n, 0n, 1n);
  await hostile.mint(customer.address, CUSTOMER_FUNDS);
  await hostile.connect(customer).approve(await billing.getAddress(), ethers.MaxUint256);
  const ref = await subscribe(billing, customer, await billing.planCount());
  return { hostile, ref, merchantId };
}

/** The custom error a failed call reverted with, or undefined when it carries none (out of gas). */
function revertReason(billing: RecurringBilling, error: unknown): string | undefined {
  let data = (error as { data?: unknown }).data;
  // Under coverage instrumentation the node reports `{ data, reason }` instead of the bare revert data.
  if (typeof data === "object" && data !== null && "data" in data) data = data.data;
  if (typeof data !== "string" || data === "0x") return undefined;
  return billing.interface.parseError(data)?.name;
}

describe("Issue 11 review findings (each test failed on contracts v1)", function () {
  describe("Finding 1: a gas-burning token cannot stall a multi-merchant chargeMany", function () {
    /**
     * Twenty-one honest due items of two merchants, and first in the due list a plan of a third (hostile) merchant
     * whose token burns every unit of gas it is given.
     */
    async function gasBombFixture() {
      const base = await subscribedFixture();
      const { billing, token, otherAdmin, outsider, customers } = base;
      await billing.connect(otherAdmin).registerMerchant(otherAdmin.address);
      const otherMerchantId = await billing.merchantCount();
      await billing
        .connect(otherAdmin)
        .createPlan(otherMerchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, 1n);
      const honest: SubscriptionRef[] = [...base.refs];
      for (let round = 0; round < 3; round++) {
        for (const customer of customers) {
          honest.push(await subscribe(billing, customer, base.planId));
          honest.push(await subscribe(billing, customer, await billing.planCount()));
        }
      }
      const { hostile, ref: bombRef } = await hostilePlan(billing, outsider, customers[0]);
      await hostile.setBehaviour(Behaviour.BurnAllGas, 0n);
      await time.increaseTo(await nextChargeAt(billing, bombRef));
      return { ...base, hostile, bombRef, honest };
    }

    it("fails only the gas bomb's item; every other merchant's due item is charged, within the 2^24 gas cap", async function () {
      const { billing, token, operator, bombRef, honest } = await loadFixture(gasBombFixture);
      expect(honest.length).to.equal(21);
      const tx = await billing.connect(operator).chargeMany([bombRef, ...honest], { gasLimit: TX_GAS_CAP });
      const receipt = await tx.wait();
      expect(receipt!.status).to.equal(1);
      await expect(tx).to.emit(billing, "ChargeFailed").withArgs(bombRef.id, anyUint, bombRef.customer, anyUint);
      const charged = receipt!.logs
        .map((log) => billing.interface.parseLog(log))
        .filter((event) => event?.name === "Charged")
        .map((event) => event!.args.subscriptionId);
      expect(charged).to.deep.equal(honest.map((ref) => ref.id));
      expect(await statusOf(billing, bombRef)).to.equal(Status.PastDue);
      for (const ref of honest) expect(await token.balanceOf(ref.customer)).to.be.lessThan(CUSTOMER_FUNDS);
    });

    it("bounds what the bomb burns to TOKEN_CALL_GAS (plus the item's own bookkeeping)", async function () {
      const { billing, operator, bombRef } = await loadFixture(gasBombFixture);
      const tx = await billing.connect(operator).chargeMany([bombRef], { gasLimit: TX_GAS_CAP });
      await expect(tx).to.emit(billing, "ChargeFailed").withArgs(bombRef.id, anyUint, bombRef.customer, anyUint);
      const receipt = await tx.wait();
      expect(receipt!.gasUsed).to.be.lessThan((await billing.TOKEN_CALL_GAS()) + 100_000n);
    });
  });

  describe("Finding 2: paused time does not count towards grace, and a customer may settle", function () {
    /** The first subscription past due (its customer's balance moved away), then re-funded. */
    async function pastDueFixture() {
      const base = await dueFixture();
      const { billing, token, operator, customer, outsider, ref } = base;
      await token.connect(customer).transfer(outsider.address, await token.balanceOf(customer.address));
      await billing.connect(operator).charge(ref);
      expect(await statusOf(billing, ref)).to.equal(Status.PastDue);
      return base;
    }

    for (const pauseKind of ["global", "merchant"] as const) {
      it(`charges, not lapses, a re-funded customer after a ${pauseKind} pause longer than the grace period`, async function () {
        const { billing, token, safe, merchantAdmin, merchantId, operator, customer, outsider, beneficiary, ref } =
          await loadFixture(pastDueFixture);
        const setPaused = (paused: boolean) =>
          pauseKind === "global"
            ? paused
              ? billing.connect(safe).pause()
              : billing.connect(safe).unpause()
            : billing.connect(merchantAdmin).setMerchantPaused(merchantId, paused);
        await time.increase(DAY);
        await setPaused(true);
        const graceLeft = await billing.graceRemaining(ref);
        await time.increase(GRACE_PERIOD * 3n);
        expect(await billing.graceRemaining(ref)).to.equal(graceLeft);
        await token.connect(outsider).transfer(customer.address, AMOUNT);
        await setPaused(false);

        const tx = billing.connect(operator).charge(ref);
        await expect(tx).to.emit(billing, "Charged");
        await expect(tx).not.to.emit(billing, "SubscriptionLapsed");
        await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
      });
    }

    it("lets the customer settle its own past-due subscription", async function () {
      const { billing, token, customer, outsider, beneficiary, ref } = await loadFixture(pastDueFixture);
      await token.connect(outsider).transfer(customer.address, AMOUNT);
      const tx = billing.connect(customer).charge(ref);
      await expect(tx).to.emit(billing, "Charged");
      await expect(tx).to.changeTokenBalances(ethers, token, [customer, beneficiary], [-AMOUNT, AMOUNT]);
      expect(await statusOf(billing, ref)).to.equal(Status.Active);
    });

    it("still lapses once the grace period of unpaused time is over", async function () {
      const { billing, safe, operator, ref } = await loadFixture(pastDueFixture);
      await billing.connect(safe).pause();
      await time.increase(GRACE_PERIOD);
      await billing.connect(safe).unpause();
      await time.increase(GRACE_PERIOD);
      await expect(billing.connect(operator).charge(ref)).to.emit(billing, "SubscriptionLapsed");
    });
  });

  describe("Finding 3: one chargeMany collects at most maxBacklog periods (default 1), pause or not", function () {
    /** A plan with the default backlog of one period and the first customer subscribed to it. */
    async function defaultBacklogFixture() {
      const base = await subscribedFixture();
      const { billing, token, merchantAdmin, merchantId, customer } = base;
      await billing.connect(merchantAdmin).createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, 1n);
      const backlogRef = await subscribe(billing, customer, await billing.planCount());
      return { ...base, backlogRef };
    }

    for (const during of ["a keeper outage", "a global pause"] as const) {
      it(`takes one period, not the whole backlog, after twelve periods of ${during}`, async function () {
        const { billing, token, safe, operator, customer, beneficiary, backlogRef } =
          await loadFixture(defaultBacklogFixture);
        if (during === "a global pause") await billing.connect(safe).pause();
        await time.increase(12n * PERIOD);
        if (during === "a global pause") await billing.connect(safe).unpause();
        const before = await snapshotBalances(token, [customer, beneficiary]);
        await billing.connect(operator).chargeMany(Array(12).fill(backlogRef));
        await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
        expect((await billing.getSubscription(backlogRef)).chargeCount).to.equal(2n);
      });
    }
  });

  describe("Finding 4: 1/64 gas griefing cannot make a funded customer's charge fail", function () {
    /** A plan in a token whose transfer costs `gasToBurn` gas, due, its customer funded and approving. */
    async function expensiveToken(gasToBurn: bigint) {
      const base = await deployBillingFixture();
      const { billing, merchantAdmin, customer } = base;
      const { hostile, ref } = await hostilePlan(billing, merchantAdmin, customer);
      await hostile.setBehaviour(Behaviour.BurnGasThenTransfer, gasToBurn);
      await time.increaseTo(await nextChargeAt(billing, ref));
      return { ...base, hostile, ref };
    }
    /** A transfer of 150,000 gas, within TOKEN_CALL_GAS: a working, if expensive, token. */
    const expensiveTokenFixture = () => expensiveToken(150_000n);
    /** A transfer of 700,000 gas, the review's example: beyond TOKEN_CALL_GAS, so it fails its own items. */
    const veryExpensiveTokenFixture = () => expensiveToken(700_000n);

    /** Every gas limit from `from` to `to` (step `step`): how a static charge by the operator ends. */
    async function sweepGasLimits(
      f: Awaited<ReturnType<typeof expensiveToken>>,
      from: bigint,
      to: bigint,
      step: bigint,
    ) {
      const { billing, operator, ref } = f;
      const outcomes = { charged: 0, failed: 0, starved: 0, outOfGas: 0 };
      for (let gasLimit = from; gasLimit <= to; gasLimit += step) {
        try {
          const charged = await billing.connect(operator).charge.staticCall(ref, { gasLimit });
          outcomes[charged ? "charged" : "failed"]++;
        } catch (error) {
          const reason = revertReason(billing, error);
          if (reason === "BillingTokenCallStarved") outcomes.starved++;
          else if (reason === undefined) outcomes.outOfGas++;
          else throw error;
        }
      }
      return outcomes;
    }

    it("never lets the gas limit decide between charged and failed: a working token's charge is starved, not failed", async function () {
      const outcomes = await sweepGasLimits(await loadFixture(expensiveTokenFixture), 60_000n, 420_000n, 2_000n);
      expect(outcomes.failed, "gas limits at which a funded customer's charge failed").to.equal(0);
      expect(outcomes.starved, "gas limits caught as starved").to.be.greaterThan(0);
      expect(outcomes.charged, "gas limits that charge").to.be.greaterThan(0);
    });

    it("never lets the gas limit decide between charged and failed with a 700,000-gas token either", async function () {
      // On v1 some of these gas limits charged the customer and others (a starved call) failed it.
      const outcomes = await sweepGasLimits(
        await loadFixture(veryExpensiveTokenFixture),
        300_000n,
        1_200_000n,
        10_000n,
      );
      expect(outcomes.charged, "gas limits that charge").to.equal(0);
      expect(outcomes.failed, "gas limits that fail the item (the token is beyond TOKEN_CALL_GAS)").to.be.greaterThan(
        0,
      );
    });

    it("leaves the subscription active when a starved charge is sent, and charges it with enough gas", async function () {
      const { billing, hostile, operator, customer, ref } = await loadFixture(expensiveTokenFixture);
      let starving = 0n;
      for (let gasLimit = 150_000n; starving === 0n && gasLimit <= 260_000n; gasLimit += 1_000n) {
        try {
          await billing.connect(operator).charge.staticCall(ref, { gasLimit });
        } catch (error) {
          if (revertReason(billing, error) === "BillingTokenCallStarved") starving = gasLimit;
        }
      }
      expect(starving).to.be.greaterThan(0n);
      await expect(billing.connect(operator).charge(ref, { gasLimit: starving })).to.be.revertedWithCustomError(
        billing,
        "BillingTokenCallStarved",
      );
      expect(await statusOf(billing, ref)).to.equal(Status.Active);
      const tx = billing.connect(operator).charge(ref, { gasLimit: 1_000_000n });
      await expect(tx).to.emit(billing, "Charged");
      await expect(tx).to.changeTokenBalance(ethers, hostile, customer, -AMOUNT);
    });
  });

  describe("Finding 5: the registry keeps admins and operators apart on chain", function () {
    it("refuses the guardian and the owner Safe as operators", async function () {
      const { registry, safe, guardian } = await loadFixture(deployBillingFixture);
      for (const admin of [guardian, safe]) {
        await expect(registry.connect(safe).rotateOperators([], [admin.address]))
          .to.be.revertedWithCustomError(registry, "RegistryAdminAsOperator")
          .withArgs(admin.address);
      }
    });

    it("refuses an operator as guardian, so one leaked hot key can never revoke every other operator", async function () {
      const { billing, registry, safe, guardian, operator } = await loadFixture(deployBillingFixture);
      await expect(registry.connect(safe).setGuardian(operator.address))
        .to.be.revertedWithCustomError(registry, "RegistryOperatorAsAdmin")
        .withArgs(operator.address);
      expect(await registry.guardian()).to.equal(guardian.address);
      expect(await billing.isOperator(guardian.address)).to.equal(false);
    });

    it("refuses the guardian among the initial operators", async function () {
      const { registry, safe, guardian } = await loadFixture(deployBillingFixture);
      await expect(
        ethers.deployContract("RecurringBilling", [safe.address, [guardian.address], guardian.address, GRACE_PERIOD]),
      )
        .to.be.revertedWithCustomError(registry, "RegistryAdminAsOperator")
        .withArgs(guardian.address);
    });
  });

  describe("Finding 6: the beneficiary may not be the billing contract (tokens locked for good) or zero", function () {
    it("refuses both at registration and on change", async function () {
      const { billing, merchantAdmin, beneficiary, merchantId } = await loadFixture(subscribedFixture);
      for (const invalid of [await billing.getAddress(), ethers.ZeroAddress]) {
        await expect(billing.connect(merchantAdmin).registerMerchant(invalid))
          .to.be.revertedWithCustomError(billing, "BillingInvalidBeneficiary")
          .withArgs(invalid);
        await expect(billing.connect(merchantAdmin).setBeneficiary(merchantId, invalid))
          .to.be.revertedWithCustomError(billing, "BillingInvalidBeneficiary")
          .withArgs(invalid);
      }
      expect((await billing.getMerchant(merchantId)).billing.beneficiary).to.equal(beneficiary.address);
    });
  });

  describe("Finding 7: subscribeWithPermit checks the allowance against the first charge, not the permit's value", function () {
    it("subscribes although an attacker used the permit first and spent part of it on another due subscription", async function () {
      const { billing, token, safe, operator, beneficiary, planId } = await loadFixture(subscribedFixture);
      const billingAddress = await billing.getAddress();
      // The customer's first subscription, approved for exactly its first period, is due again.
      const [fresh] = (await ethers.getSigners()).slice(12, 13);
      await token.connect(safe).mint(fresh.address, CUSTOMER_FUNDS);
      await token.connect(fresh).approve(billingAddress, AMOUNT);
      const first = await subscribe(billing, fresh, planId);
      await time.increaseTo(await nextChargeAt(billing, first));
      // The customer signs a permit for three periods of a new subscription; the attacker submits it and charges.
      const value = 3n * AMOUNT;
      const deadline = BigInt(await time.latest()) + 3600n;
      const { v, r, s } = await signPermit(token, fresh, billingAddress, value, deadline);
      await token.connect(operator).permit(fresh.address, billingAddress, value, deadline, v, r, s);
      await billing.connect(operator).charge(first);
      expect(await token.allowance(fresh.address, billingAddress)).to.equal(value - AMOUNT);

      const tx = billing.connect(fresh).subscribeWithPermit(planId, value, deadline, v, r, s);
      await expect(tx).to.emit(billing, "Subscribed");
      await expect(tx).to.changeTokenBalances(ethers, token, [fresh, beneficiary], [-AMOUNT, AMOUNT]);
    });
  });

  describe("Finding 8: the grace period is validated at deployment", function () {
    it("refuses a grace period outside [MIN_GRACE_PERIOD, MAX_GRACE_PERIOD], including 0 and 2^256 - 1", async function () {
      const { billing, safe, operator } = await loadFixture(deployBillingFixture);
      const min = await billing.MIN_GRACE_PERIOD();
      const max = await billing.MAX_GRACE_PERIOD();
      for (const grace of [0n, 1n, min - 1n, max + 1n, ethers.MaxUint256]) {
        await expect(
          ethers.deployContract("RecurringBilling", [safe.address, [operator.address], ethers.ZeroAddress, grace]),
        )
          .to.be.revertedWithCustomError(billing, "BillingInvalidGracePeriod")
          .withArgs(grace);
      }
      for (const grace of [min, max]) {
        const accepted = await ethers.deployContract("RecurringBilling", [
          safe.address,
          [operator.address],
          ethers.ZeroAddress,
          grace,
        ]);
        expect(await accepted.gracePeriod()).to.equal(grace);
      }
    });
  });

  describe("Finding 9: after 2106 a failing charge still fails only its own item", function () {
    it("records a failure past 2^32 seconds and charges the rest of the batch", async function () {
      const { billing, token, operator, customers, outsider, refs, merchantId } = await loadFixture(subscribedFixture);
      await time.increaseTo(2n ** 32n + DAY);
      const [paying, broke] = refs;
      await token.connect(customers[1]).transfer(outsider.address, await token.balanceOf(customers[1].address));
      const tx = billing.connect(operator).chargeMany([broke, paying]);
      await expect(tx).to.emit(billing, "ChargeFailed").withArgs(broke.id, merchantId, customers[1].address, anyUint);
      await expect(tx).to.emit(billing, "Charged").withArgs(paying.id, merchantId, AMOUNT, anyUint);
      const sub = await billing.getSubscription(broke);
      expect(sub.status).to.equal(Status.PastDue);
      expect(sub.pastDueClock).to.be.greaterThan(2n ** 32n);
      // Subscribing works after 2106 as well.
      await expect(billing.connect(customers[0]).subscribe(await billing.planCount())).to.emit(billing, "Subscribed");
    });
  });

  describe("Finding 10: a cancel made from inside transferFrom sticks when the token then returns false", function () {
    it("keeps the subscription cancelled, so no later charge is possible", async function () {
      const { billing, operator, customer, beneficiary } = await loadFixture(deployBillingFixture);
      const hostile = await ethers.deployContract("HostileToken");
      const hostileAddress = await hostile.getAddress();
      const billingAddress = await billing.getAddress();
      // The token administers the merchant whose plan bills in it, so it may cancel that merchant's subscriptions.
      await hostile.execute(
        billingAddress,
        billing.interface.encodeFunctionData("registerMerchant", [beneficiary.address]),
      );
      const merchantId = await billing.merchantCount();
      await hostile.execute(
        billingAddress,
        billing.interface.encodeFunctionData("createPlan", [merchantId, hostileAddress, AMOUNT, PERIOD, 0n, 0n, 1n]),
      );
      await hostile.mint(customer.address, CUSTOMER_FUNDS);
      await hostile.connect(customer).approve(billingAddress, ethers.MaxUint256);
      const ref = await subscribe(billing, customer, await billing.planCount());
      await time.increaseTo(await nextChargeAt(billing, ref));

      await hostile.arm(billingAddress, billing.interface.encodeFunctionData("cancel", [ref]));
      await hostile.setBehaviour(Behaviour.CallThenReturnFalse, 0n);
      const tx = billing.connect(operator).charge(ref);
      await expect(tx)
        .to.emit(billing, "SubscriptionCancelled")
        .withArgs(ref.id, merchantId, customer.address, hostileAddress);
      await expect(tx).to.emit(billing, "ChargeFailed");
      expect(await hostile.callSucceeded()).to.equal(true);
      expect(await statusOf(billing, ref)).to.equal(Status.Cancelled);
      await hostile.setBehaviour(Behaviour.Honest, 0n);
      await time.increase(PERIOD);
      await expect(billing.connect(operator).charge(ref))
        .to.be.revertedWithCustomError(billing, "BillingSubscriptionNotActive")
        .withArgs(ref.id, Status.Cancelled);
    });
  });

  describe("Finding 11: chargeMany by a key that is no longer an operator reverts", function () {
    it("reverts BillingNotAnOperator for a revoked operator and moves nothing", async function () {
      const { billing, registry, token, guardian, operator, customers, beneficiary, refs } =
        await loadFixture(dueFixture);
      await time.increaseTo(await nextChargeAt(billing, refs[2]));
      await registry.connect(guardian).revokeOperators([operator.address]);
      const before = await snapshotBalances(token, [...customers, beneficiary]);
      await expect(billing.connect(operator).chargeMany(refs))
        .to.be.revertedWithCustomError(billing, "BillingNotAnOperator")
        .withArgs(operator.address);
      await expectBalanceChanges(token, before);
    });
  });
});
