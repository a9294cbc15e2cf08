// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Foundry's naming convention (testFuzz_*) is how the runner finds these functions; failure messages are for humans.
// solhint-disable func-name-mixedcase, gas-small-strings

import {BillingToken} from "../../BillingToken.sol";
import {OperatorRegistry} from "../../OperatorRegistry.sol";
import {RecurringBilling} from "../../RecurringBilling.sol";
import {IOperatorRegistry} from "../../interfaces/IOperatorRegistry.sol";
import {VM} from "./CheatCodes.t.sol";

/// @title RecurringBillingFuzz
/// @notice Property tests of single scenarios with fuzzed terms, delays and repetitions: however late and however
///         often the operator calls, a customer pays exactly the periods that have started, never more, never early.
contract RecurringBillingFuzz {
    address private constant SAFE = address(0x5AFE);
    address private constant OPERATOR = address(0x0B0B);
    address private constant ADMIN = address(0xAD00);
    address private constant BENEFICIARY = address(0xBE00);
    address private constant CUSTOMER = address(0xC000);

    BillingToken private token;
    RecurringBilling private billing;
    uint256 private merchantId;

    /// @dev Every scenario subscribes at START and warps to START + a delay. Tests compute times from these constants
    ///      rather than reading block.timestamp around a warp: via-IR may reuse a timestamp read before the warp.
    uint256 private constant START = 1_700_000_000;

    /// @notice Deploys the token, the registry (OPERATOR registered) and billing, and registers one merchant.
    function setUp() public {
        token = new BillingToken("Billing USD", "bUSD", address(this));
        address[] memory operators = new address[](1);
        operators[0] = OPERATOR;
        OperatorRegistry registry = new OperatorRegistry(SAFE, operators);
        billing = new RecurringBilling(SAFE, IOperatorRegistry(address(registry)), 7 days);
        VM.prank(ADMIN);
        merchantId = billing.registerMerchant(BENEFICIARY);
    }

    /// @notice However many charge calls the operator makes after any delay, the customer pays exactly
    ///         min(1 + calls, periods started) periods.
    /// @param amount The plan amount (bounded to 1..2^64).
    /// @param period The plan period (bounded to 1 minute..60 days).
    /// @param delay Time after subscribing (bounded to 0..365 days).
    /// @param calls charge calls made by the operator (bounded to 0..20).
    function testFuzz_chargeTakesOnlyStartedPeriods(uint64 amount, uint32 period, uint32 delay, uint8 calls) public {
        (uint256 subscriptionId, uint256 a, uint256 p) = _subscribe(amount, period, 0, 0);
        uint256 elapsed = delay % 365 days;
        VM.warp(START + elapsed);
        uint256 started = elapsed / p + 1;
        uint256 attempts = calls % 21;
        for (uint256 i = 0; i < attempts; ++i) {
            VM.prank(OPERATOR);
            try billing.charge(subscriptionId) {} catch {}
        }
        uint256 periodsPaid = _min(1 + attempts, started);
        VM.assertEq(_paid(), a * periodsPaid, "customer paid other than the started periods charged");
        VM.assertEq(token.balanceOf(BENEFICIARY), a * periodsPaid, "beneficiary received other than paid");
        VM.assertEq(billing.nextChargeAt(subscriptionId), START + periodsPaid * p, "schedule drifted");
    }

    /// @notice A chargeMany repeating one id pays at most the periods started, whatever the number of repeats.
    /// @param period The plan period (bounded to 1 minute..60 days).
    /// @param delay Time after subscribing (bounded to 0..30 days).
    /// @param repeats Occurrences of the id in the batch (bounded to 1..32).
    function testFuzz_chargeManyRepeatsPayOnlyDuePeriods(uint32 period, uint32 delay, uint8 repeats) public {
        (uint256 subscriptionId, uint256 a, uint256 p) = _subscribe(1 ether, period, 0, 0);
        uint256 elapsed = delay % 30 days;
        VM.warp(START + elapsed);
        uint256[] memory ids = new uint256[](1 + (repeats % 32));
        for (uint256 i = 0; i < ids.length; ++i) ids[i] = subscriptionId;
        VM.prank(OPERATOR);
        uint256 charged = billing.chargeMany(ids);
        uint256 due = elapsed / p;
        VM.assertEq(charged, _min(ids.length, due), "periods charged by the batch");
        VM.assertEq(_paid(), a * (1 + charged), "customer paid other than the due periods");
    }

    /// @notice Charging at any moment before a period starts reverts with BillingNotDue and moves nothing.
    /// @param period The plan period (bounded to 1 minute..60 days).
    /// @param early How many seconds before the due time (bounded to 1..period).
    function testFuzz_chargeBeforeDueReverts(uint32 period, uint32 early) public {
        (uint256 subscriptionId, , uint256 p) = _subscribe(1 ether, period, 0, 0);
        uint256 next = billing.nextChargeAt(subscriptionId);
        VM.warp(next - 1 - (early % p));
        uint256 paidBefore = _paid();
        VM.expectRevert(abi.encodeWithSelector(RecurringBilling.BillingNotDue.selector, subscriptionId, next));
        VM.prank(OPERATOR);
        billing.charge(subscriptionId);
        VM.assertEq(_paid(), paidBefore, "an early charge moved tokens");
    }

    /// @notice A capped subscription (with or without a trial) never pays more than its cap, however late the keeper.
    /// @param maxCharges The cap (bounded to 1..12).
    /// @param trial The trial (bounded to 0..30 days).
    /// @param delay Time after subscribing (bounded to 0..2 years).
    function testFuzz_cappedSubscriptionStopsAtItsCap(uint8 maxCharges, uint32 trial, uint32 delay) public {
        uint256 cap = 1 + (maxCharges % 12);
        uint256 t = trial % 30 days;
        (uint256 subscriptionId, uint256 a, uint256 p) = _subscribe(1 ether, 1 days, uint32(t), uint32(cap));
        uint256 elapsed = delay % 730 days;
        VM.warp(START + elapsed);
        for (uint256 i = 0; i < cap + 3; ++i) {
            VM.prank(OPERATOR);
            try billing.charge(subscriptionId) {} catch {}
        }
        uint256 started = elapsed < t ? 0 : (elapsed - t) / p + 1;
        uint256 periodsPaid = _min(cap, started);
        VM.assertEq(_paid(), a * periodsPaid, "capped subscription paid other than min(cap, started periods)");
        bool completed = billing.statusOf(subscriptionId) == RecurringBilling.Status.Completed;
        VM.assertTrue(completed == (periodsPaid == cap), "completed exactly when the cap is reached");
    }

    /// @dev A plan with the given terms (amount and period bounded to valid values) and CUSTOMER subscribed to it,
    ///      funded and approved for far more than it may ever owe.
    function _subscribe(
        uint256 amount,
        uint32 period,
        uint32 trial,
        uint32 maxCharges
    ) private returns (uint256 subscriptionId, uint256 a, uint256 p) {
        a = 1 + (amount % type(uint64).max);
        p = 1 minutes + (period % 60 days);
        VM.warp(START);
        VM.prank(ADMIN);
        uint256 planId = billing.createPlan(merchantId, address(token), a, uint32(p), trial, maxCharges);
        token.mint(CUSTOMER, a * 1000);
        VM.prank(CUSTOMER);
        token.approve(address(billing), a * 1000);
        VM.prank(CUSTOMER);
        subscriptionId = billing.subscribe(planId);
    }

    function _paid() private view returns (uint256) {
        return token.totalSupply() - token.balanceOf(CUSTOMER);
    }

    function _min(uint256 x, uint256 y) private pure returns (uint256) {
        return x < y ? x : y;
    }
}
