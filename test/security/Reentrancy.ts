// A plan's token is chosen by its merchant, so a malicious token is in the threat model: from inside transferFrom it
// re-enters the billing contract to be paid twice or to change state mid-charge. The token is even registered as an
// operator here, so only the reentrancy guard (or, for cancel, authorization) stands in the way.
import { expect } from "chai";

import {
  AMOUNT,
  MAX_BACKLOG,
  PERIOD,
  Status,
  deployBillingFixture,
  ethers,
  networkHelpers,
  nextChargeAt,
  statusOf,
  subscribe,
} from "../fixtures.js";
import { expectBalanceChanges, snapshotBalances } from "./balances.js";

const { loadFixture, time } = networkHelpers;

/** A merchant billing in ReentrantToken, `customer` subscribed (period 0 paid) and period 1 due. */
async function reentrantTokenFixture() {
  const base = await deployBillingFixture();
  const { billing, registry, safe, operator, merchantAdmin, beneficiary, customer } = base;
  const token = await ethers.deployContract("ReentrantToken");
  const billingAddress = await billing.getAddress();
  const tokenAddress = await token.getAddress();
  await registry.connect(safe).rotateOperators([], [tokenAddress]);

  await billing.connect(merchantAdmin).registerMerchant(beneficiary.address);
  const merchantId = await billing.merchantCount();
  await billing.connect(merchantAdmin).createPlan(merchantId, tokenAddress, AMOUNT, PERIOD, 0n, 0n, MAX_BACKLOG);
  const planId = await billing.planCount();

  await token.mint(customer.address, AMOUNT * 10n);
  await token.connect(customer).approve(billingAddress, AMOUNT * 10n);
  const ref = await subscribe(billing, customer, planId);
  await time.increaseTo(await nextChargeAt(billing, ref));

  const parties = [customer.address, beneficiary.address, operator.address, billingAddress, tokenAddress];
  return { ...base, token, billingAddress, merchantId, planId, ref, parties };
}

type Fixture = Awaited<ReturnType<typeof reentrantTokenFixture>>;

/** Calldata of the nested calls the token attempts. */
const reentries: { name: string; payload: (f: Fixture) => string }[] = [
  { name: "charge", payload: (f) => f.billing.interface.encodeFunctionData("charge", [f.ref]) },
  { name: "chargeMany", payload: (f) => f.billing.interface.encodeFunctionData("chargeMany", [[f.ref]]) },
  { name: "subscribe", payload: (f) => f.billing.interface.encodeFunctionData("subscribe", [f.planId]) },
];

/** Asserts the token tried its re-entry and that it failed with `error` (encoded with `args`). */
async function expectReentryFailed(f: Fixture, error: string, args: unknown[] = []) {
  expect(await f.token.reentryAttempted(), "re-entry attempted").to.equal(true);
  expect(await f.token.reentrySucceeded(), "re-entry succeeded").to.equal(false);
  expect(await f.token.reentryResult()).to.equal(f.billing.interface.encodeErrorResult(error, args));
}

describe("Security: reentrancy through a malicious token", function () {
  for (const outer of ["charge", "chargeMany"] as const) {
    describe(outer, function () {
      for (const reentry of reentries) {
        it(`blocks a re-entry into ${reentry.name} and charges the due period once`, async function () {
          const f = await loadFixture(reentrantTokenFixture);
          const { billing, token, operator, customer, beneficiary, billingAddress, ref, parties } = f;
          await token.arm(billingAddress, reentry.payload(f));
          const before = await snapshotBalances(token, parties);
          const asOperator = billing.connect(operator);
          await (outer === "charge" ? asOperator.charge(ref) : asOperator.chargeMany([ref]));
          await expectReentryFailed(f, "ReentrancyGuardReentrantCall");
          await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
          expect((await billing.getSubscription(ref)).chargeCount).to.equal(2n);
          expect(await billing.subscriptionCount()).to.equal(1n);
        });
      }

      it("cannot cancel the subscription from inside the transfer", async function () {
        const f = await loadFixture(reentrantTokenFixture);
        const { billing, token, operator, billingAddress, ref } = f;
        await token.arm(billingAddress, billing.interface.encodeFunctionData("cancel", [ref]));
        const asOperator = billing.connect(operator);
        await (outer === "charge" ? asOperator.charge(ref) : asOperator.chargeMany([ref]));
        await expectReentryFailed(f, "BillingUnauthorizedCanceller", [ref.id, await token.getAddress()]);
        expect(await statusOf(billing, ref)).to.equal(Status.Active);
      });
    });
  }

  describe("subscribe", function () {
    for (const reentry of reentries) {
      it(`blocks a re-entry into ${reentry.name} during the first charge`, async function () {
        const f = await loadFixture(reentrantTokenFixture);
        const { billing, token, customer, beneficiary, billingAddress, planId, parties } = f;
        await token.arm(billingAddress, reentry.payload(f));
        const before = await snapshotBalances(token, parties);
        await billing.connect(customer).subscribe(planId);
        await expectReentryFailed(f, "ReentrancyGuardReentrantCall");
        await expectBalanceChanges(token, before, { [customer.address]: -AMOUNT, [beneficiary.address]: AMOUNT });
        expect(await billing.subscriptionCount()).to.equal(2n);
      });
    }
  });
});
