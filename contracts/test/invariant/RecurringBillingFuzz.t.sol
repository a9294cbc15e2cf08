// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Foundry's naming convention (testFuzz_*) is how the runner finds these functions; failure messages are for humans.
// solhint-disable func-name-mixedcase, gas-small-strings

import {BillingToken} from "../../BillingToken.sol";
import {RecurringBilling} from "../../RecurringBilling.sol";
import {VM} from "./CheatCodes.t.sol";

/// @title RecurringBillingFuzz
/// @notice Property tests of single scenarios with fuzzed terms, backlogs, delays, pauses and repetitions: however
///         late and however often the operator calls, a customer pays only periods that have started, at most
///         `maxBacklog` of them at once, never early; and paused time never counts towards a grace period.
contract RecurringBillingFuzz {
    address private constant SAFE = address(0x5AFE);
    address private constant OPERATOR = address(0x0B0B);
    address private constant ADMIN = address(0xAD00);
    address private constant BENEFICIARY = address(0xBE00);
    address private constant CUSTOMER = address(0xC000);
    address private constant SINK = address(0x51F4);
    uint256 private constant GRACE_PERIOD = 7 days;

    BillingToken private token;
    RecurringBilling private billing;
    uint256 private merchantId;

    /// @dev Every scenario subscribes at START and warps to START + a delay. Tests compute times from these constants
    ///      rather than reading block.timestamp around a warp: via-IR may reuse a timestamp read before the warp.
    uint256 private constant START = 1_700_000_000;

    /// @notice Deploys the token and billing (which creates the registry, OPERATOR registered), and registers one
    ///         merchant.
    function setUp() public {
        token = new BillingToken("Billing USD", "bUSD", address(this));
        address[] memory operators = new address[](1);
        operators[0] = OPERATOR;
        billing = new RecurringBilling(SAFE, operators, address(0), GRACE_PERIOD);
        VM.prank(ADMIN);
        merchantId = billing.registerMerchant(BENEFICIARY);
    }

    /// @notice However many charge calls the operator makes after any delay, the customer pays exactly
    ///         1 + min(calls, periods due, maxBacklog) periods, and the schedule lands where forgiveness puts it.
    /// @param amount The plan amount (bounded to 1..2^64).
    /// @param period The plan period (bounded to 1 minute..60 days).
    /// @param backlog The plan's maxBacklog (bounded to 1..12).
    /// @param delay Time after subscribing (bounded to 0..365 days).
    /// @param calls charge calls made by the operator (bounded to 0..20).
    function testFuzz_chargeTakesOnlyStartedPeriodsWithinTheBacklog(
        uint64 amount,
        uint32 period,
        uint8 backlog,
        uint32 delay,
        uint8 calls
    ) public {
        uint256 b = 1 + (backlog % 12);
        (RecurringBilling.SubscriptionRef memory ref, uint256 a, uint256 p) = _subscribe(amount, period, 0, 0, b);
        uint256 elapsed = delay % 365 days;
        VM.warp(START + elapsed);
        uint256 due = elapsed / p;
        uint256 attempts = calls % 21;
        for (uint256 i = 0; i < attempts; ++i) {
            VM.prank(OPERATOR);
            try billing.charge(ref) {} catch {}
        }
        uint256 charged = _min(attempts, _min(due, b));
        VM.assertEq(_paid(), a * (1 + charged), "customer paid other than the collectable periods charged");
        VM.assertEq(token.balanceOf(BENEFICIARY), a * (1 + charged), "beneficiary received other than paid");
        uint256 forgiven = attempts == 0 || due <= b ? 0 : due - b;
        VM.assertEq(
            billing.getSubscription(ref).nextChargeAt,
            START + (1 + forgiven + charged) * p,
            "schedule is not anchored"
        );
    }

    /// @notice A chargeMany repeating one ref pays at most min(periods due, maxBacklog), whatever the repeats.
    /// @param period The plan period (bounded to 1 minute..60 days).
    /// @param backlog The plan's maxBacklog (bounded to 1..12).
    /// @param delay Time after subscribing (bounded to 0..30 days).
    /// @param repeats Occurrences of the ref in the batch (bounded to 1..32).
    function testFuzz_chargeManyRepeatsPayOnlyCollectablePeriods(
        uint32 period,
        uint8 backlog,
        uint32 delay,
        uint8 repeats
    ) public {
        uint256 b = 1 + (backlog % 12);
        (RecurringBilling.SubscriptionRef memory ref, uint256 a, uint256 p) = _subscribe(1 ether, period, 0, 0, b);
        uint256 elapsed = delay % 30 days;
        VM.warp(START + elapsed);
        RecurringBilling.SubscriptionRef[] memory refs = new RecurringBilling.SubscriptionRef[](1 + (repeats % 32));
        for (uint256 i = 0; i < refs.length; ++i) refs[i] = ref;
        VM.prank(OPERATOR);
        uint256 charged = billing.chargeMany(refs);
        VM.assertEq(charged, _min(refs.length, _min(elapsed / p, b)), "periods charged by the batch");
        VM.assertEq(_paid(), a * (1 + charged), "customer paid other than the charged periods");
    }

    /// @notice Charging at any moment before a period starts reverts with BillingNotDue and moves nothing.
    /// @param period The plan period (bounded to 1 minute..60 days).
    /// @param early How many seconds before the due time (bounded to 1..period).
    function testFuzz_chargeBeforeDueReverts(uint32 period, uint32 early) public {
        (RecurringBilling.SubscriptionRef memory ref, , uint256 p) = _subscribe(1 ether, period, 0, 0, 1);
        uint256 next = START + p;
        VM.assertEq(billing.getSubscription(ref).nextChargeAt, next, "first period not scheduled one period on");
        VM.warp(next - 1 - (early % p));
        uint256 paidBefore = _paid();
        VM.expectRevert(abi.encodeWithSelector(RecurringBilling.BillingNotDue.selector, ref.id, next));
        VM.prank(OPERATOR);
        billing.charge(ref);
        VM.assertEq(_paid(), paidBefore, "an early charge moved tokens");
    }

    /// @notice A capped subscription (with or without a trial) never pays more than its cap, nor more than its backlog
    ///         at once, however late the keeper.
    /// @param maxCharges The cap (bounded to 1..12).
    /// @param backlog The plan's maxBacklog (bounded to 1..12).
    /// @param trial The trial (bounded to 0..30 days).
    /// @param delay Time after subscribing (bounded to 0..2 years).
    function testFuzz_cappedSubscriptionStopsAtItsCap(
        uint8 maxCharges,
        uint8 backlog,
        uint32 trial,
        uint32 delay
    ) public {
        uint256 cap = 1 + (maxCharges % 12);
        uint256 b = 1 + (backlog % 12);
        uint256 t = trial % 30 days;
        (RecurringBilling.SubscriptionRef memory ref, uint256 a, uint256 p) = _subscribe(
            1 ether,
            1 days,
            uint32(t),
            uint32(cap),
            b
        );
        uint256 elapsed = delay % 730 days;
        VM.warp(START + elapsed);
        for (uint256 i = 0; i < cap + 3; ++i) {
            VM.prank(OPERATOR);
            try billing.charge(ref) {} catch {}
        }
        // Without a trial, period 0 was paid at subscribe and only later periods count against the backlog.
        uint256 paidAtSubscribe = t == 0 ? 1 : 0;
        uint256 started = elapsed < t ? 0 : (elapsed - t) / p + 1;
        uint256 periodsPaid = _min(cap, paidAtSubscribe + _min(started - paidAtSubscribe, b));
        VM.assertEq(_paid(), a * periodsPaid, "capped subscription paid other than min(cap, collectable periods)");
        bool completed = billing.getSubscription(ref).status == RecurringBilling.Status.Completed;
        VM.assertTrue(completed == (periodsPaid == cap), "completed exactly when the cap is reached");
    }

    /// @notice However long billing is globally paused, resuming never lets a charge collect more than `maxBacklog`
    ///         periods: a pause never piles up a debt.
    /// @param backlog The plan's maxBacklog (bounded to 1..12).
    /// @param pausedFor How long billing stays paused (bounded to 0..2 years).
    /// @param repeats Occurrences of the ref in the batch after resuming (bounded to 1..32).
    function testFuzz_pauseNeverPilesUpADebt(uint8 backlog, uint32 pausedFor, uint8 repeats) public {
        uint256 b = 1 + (backlog % 12);
        (RecurringBilling.SubscriptionRef memory ref, uint256 a, uint256 p) = _subscribe(1 ether, 1 days, 0, 0, b);
        VM.prank(SAFE);
        billing.pause();
        uint256 resumeAt = START + (pausedFor % 730 days);
        VM.warp(resumeAt);
        VM.prank(SAFE);
        billing.unpause();
        RecurringBilling.SubscriptionRef[] memory refs = new RecurringBilling.SubscriptionRef[](1 + (repeats % 32));
        for (uint256 i = 0; i < refs.length; ++i) refs[i] = ref;
        VM.prank(OPERATOR);
        uint256 charged = billing.chargeMany(refs);
        VM.assertLe(charged, b, "a charge after a pause collected more than the backlog");
        VM.assertEq(charged, _min(refs.length, _min((resumeAt - START) / p, b)), "periods charged after the pause");
        VM.assertEq(_paid(), a * (1 + charged), "customer paid other than the charged periods");
    }

    /// @notice A past-due customer who re-funds during a pause of any length is charged, not lapsed, on resume when
    ///         less than the grace period of unpaused time has passed; paused time is not counted.
    /// @param beforePause Unpaused time past due before the pause (bounded to 0..grace - 1 hour).
    /// @param pausedFor How long billing stays paused, globally or for the merchant (bounded to 0..2 years).
    /// @param merchantPause Whether the merchant pauses (otherwise the Safe pauses billing globally).
    function testFuzz_pausedTimeNeverCountsTowardsGrace(
        uint32 beforePause,
        uint32 pausedFor,
        bool merchantPause
    ) public {
        (RecurringBilling.SubscriptionRef memory ref, uint256 a, uint256 p) = _subscribe(1 ether, 30 days, 0, 0, 1);
        // Period 1 falls due and fails: the customer's balance is gone.
        uint256 failedAt = START + p;
        VM.warp(failedAt);
        _moveAwayCustomerBalance();
        VM.prank(OPERATOR);
        billing.charge(ref);
        VM.assertTrue(billing.getSubscription(ref).status == RecurringBilling.Status.PastDue, "not past due");

        uint256 pausedAt = failedAt + (beforePause % (GRACE_PERIOD - 1 hours));
        uint256 resumedAt = pausedAt + (pausedFor % 730 days);
        VM.warp(pausedAt);
        _setPaused(merchantPause, true);
        VM.warp(resumedAt);
        token.mint(CUSTOMER, a);
        _setPaused(merchantPause, false);

        VM.assertEq(
            billing.graceRemaining(ref),
            GRACE_PERIOD - (pausedAt - failedAt),
            "grace remaining counted paused time"
        );
        VM.prank(CUSTOMER);
        VM.assertTrue(billing.charge(ref), "a funded customer within its grace period was not charged");
        VM.assertTrue(billing.getSubscription(ref).status == RecurringBilling.Status.Active, "not active again");
    }

    /// @dev A plan with the given terms (amount and period bounded to valid values) and CUSTOMER subscribed to it,
    ///      funded and approved for far more than it may ever owe.
    function _subscribe(
        uint256 amount,
        uint32 period,
        uint32 trial,
        uint32 maxCharges,
        uint256 maxBacklog
    ) private returns (RecurringBilling.SubscriptionRef memory ref, uint256 a, uint256 p) {
        a = 1 + (amount % type(uint64).max);
        p = 1 minutes + (period % 60 days);
        VM.warp(START);
        VM.prank(ADMIN);
        uint256 planId = billing.createPlan(
            merchantId,
            address(token),
            a,
            uint32(p),
            trial,
            maxCharges,
            uint8(maxBacklog)
        );
        token.mint(CUSTOMER, a * 1000);
        VM.prank(CUSTOMER);
        token.approve(address(billing), a * 1000);
        VM.prank(CUSTOMER);
        uint256 subscriptionId = billing.subscribe(planId);
        ref = RecurringBilling.SubscriptionRef({
            id: subscriptionId,
            customer: CUSTOMER,
            amount: a,
            token: address(token)
        });
    }

    function _moveAwayCustomerBalance() private {
        uint256 balance = token.balanceOf(CUSTOMER);
        VM.prank(CUSTOMER);
        token.transfer(SINK, balance);
    }

    function _setPaused(bool merchantPause, bool paused) private {
        VM.prank(merchantPause ? ADMIN : SAFE);
        if (merchantPause) {
            billing.setMerchantPaused(merchantId, paused);
        } else if (paused) {
            billing.pause();
        } else {
            billing.unpause();
        }
    }

    /// @dev What left the customer for the merchant: everything minted minus what it holds and moved away itself.
    function _paid() private view returns (uint256) {
        return token.totalSupply() - token.balanceOf(CUSTOMER) - token.balanceOf(SINK);
    }

    function _min(uint256 x, uint256 y) private pure returns (uint256) {
        return x < y ? x : y;
    }
}
