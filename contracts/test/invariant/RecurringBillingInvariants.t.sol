// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Foundry's naming convention (invariant_*, afterInvariant) is how the runner finds these functions; failure
// messages are for humans and the run's log is the point of console, so the gas rules do not apply to this test.
// solhint-disable func-name-mixedcase, gas-small-strings, no-console

import {console} from "hardhat/console.sol";

import {RecurringBilling} from "../../RecurringBilling.sol";
import {BillingHandler} from "./BillingHandler.t.sol";
import {VM} from "./CheatCodes.t.sol";

/// @title RecurringBillingInvariants
/// @notice Stateful property tests: the fuzzer calls random sequences of {BillingHandler} actions (subscribe, charge,
///         chargeMany, keeper rounds, cancel, global and merchant pause/unpause, operator revocation and
///         re-registration, beneficiary changes, time warps (some to a due time or just before it), drains, refills
///         and allowance changes, by authorized and unauthorized callers, with unknown and forged refs) and every
///         invariant below is checked after each call. Runs and depth come from `test.solidity.invariant` in
///         hardhat.config.ts.
contract RecurringBillingInvariants {
    /// @notice A contract the fuzzer may call and the functions it may call on it.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    BillingHandler public handler;
    RecurringBilling public billing;

    /// @notice Deploys the contracts (through the handler) before each run.
    function setUp() public {
        handler = new BillingHandler();
        billing = handler.billing();
    }

    /// @notice The fuzzer calls only the handler.
    /// @return targets The handler.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice ... and only its actions, so that every fuzzer call is one counted action.
    /// @return selectors The handler's actions.
    function targetSelectors() public view returns (FuzzSelector[] memory selectors) {
        bytes4[] memory actions = new bytes4[](14);
        actions[0] = BillingHandler.subscribe.selector;
        actions[1] = BillingHandler.charge.selector;
        actions[2] = BillingHandler.chargeMany.selector;
        actions[3] = BillingHandler.cancel.selector;
        actions[4] = BillingHandler.setGlobalPause.selector;
        actions[5] = BillingHandler.setMerchantPause.selector;
        actions[6] = BillingHandler.setBeneficiary.selector;
        actions[7] = BillingHandler.warp.selector;
        actions[8] = BillingHandler.drain.selector;
        actions[9] = BillingHandler.refill.selector;
        actions[10] = BillingHandler.setAllowance.selector;
        actions[11] = BillingHandler.keeperRound.selector;
        actions[12] = BillingHandler.rotateOperator.selector;
        actions[13] = BillingHandler.warpToDue.selector;
        selectors = new FuzzSelector[](1);
        selectors[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    /// @notice No customer ever pays more than amount x periods started (until cancellation), nor beyond the cap;
    ///         and what the contract counts as paid (chargeCount) x amount is exactly what left the customer's balance.
    function invariant_customerNeverPaysMoreThanElapsedPeriods() public view {
        uint256 customers = handler.customerCount();
        for (uint256 i = 0; i < customers; ++i) {
            address customer = handler.customers(i);
            uint256 subscriptionId = handler.subscriptionOf(customer);
            uint256 paid = handler.paidBy(customer);
            VM.assertLe(paid, handler.maxOwed(subscriptionId), "customer paid more than its terms allow");
            uint256 counted =
                subscriptionId == 0
                    ? 0
                    : billing.getSubscription(handler.refOf(subscriptionId)).chargeCount *
                        handler.agreementOf(subscriptionId).amount;
            VM.assertEq(paid, counted, "tokens taken differ from periods charged x amount");
        }
    }

    /// @notice Tokens only ever move from a customer to a beneficiary of that customer's merchant: each merchant's
    ///         beneficiaries hold exactly what its customers paid, and no one else (operator, admins, the Safe, the
    ///         outsider, the contracts) ever receives anything.
    function invariant_moneyOnlyMovesFromCustomersToTheirMerchant() public view {
        uint256[2] memory paidToMerchant;
        uint256 heldByCustomers;
        uint256 customers = handler.customerCount();
        for (uint256 i = 0; i < customers; ++i) {
            address customer = handler.customers(i);
            uint256 subscriptionId = handler.subscriptionOf(customer);
            heldByCustomers += handler.token().balanceOf(customer);
            if (subscriptionId != 0) {
                paidToMerchant[handler.agreementOf(subscriptionId).merchantIndex] += handler.paidBy(customer);
            }
        }
        uint256 heldByBeneficiaries;
        for (uint256 m = 0; m < 2; ++m) {
            uint256 received = _balance(handler.beneficiaries(m, 0)) + _balance(handler.beneficiaries(m, 1));
            VM.assertEq(received, paidToMerchant[m], "merchant's beneficiaries received other than its customers paid");
            heldByBeneficiaries += received;
        }
        uint256 supply = handler.token().totalSupply();
        VM.assertEq(heldByCustomers + heldByBeneficiaries + _balance(handler.SINK()), supply, "tokens went elsewhere");
        VM.assertEq(_balance(handler.OPERATOR()), 0, "operator received tokens");
        VM.assertEq(_balance(address(billing)), 0, "billing contract holds tokens");
    }

    /// @notice A cancelled, lapsed or completed subscription never changes status again and its customer never pays
    ///         again.
    function invariant_stoppedSubscriptionIsNeverChargedAgain() public view {
        uint256 count = billing.subscriptionCount();
        for (uint256 id = 1; id <= count; ++id) {
            BillingHandler.Agreement memory agreement = handler.agreementOf(id);
            if (!agreement.stopped) continue;
            VM.assertEq(handler.paidBy(agreement.customer), agreement.paidWhenStopped, "stopped subscription charged");
        }
        VM.assertEq(handler.revivedSubscriptions(), 0, "stopped subscription changed status");
    }

    /// @notice Only a registered operator, the subscription's merchant admin or its customer ever charges; only the
    ///         customer or its merchant admin ever cancels; the operator and the guardian never pause or unpause; the
    ///         operator never adds an operator.
    function invariant_onlyAuthorizedCallersChargeCancelOrPause() public view {
        VM.assertEq(handler.unauthorizedCharges(), 0, "unauthorized caller charged");
        VM.assertEq(handler.unauthorizedCancels(), 0, "unauthorized caller cancelled");
        VM.assertEq(handler.unauthorizedPauses(), 0, "operator or guardian paused or unpaused");
        VM.assertEq(handler.unauthorizedRegistryChanges(), 0, "operator added an operator");
    }

    /// @notice Every period paid was due when it was paid: no charge is ever early.
    function invariant_noPeriodIsPaidBeforeItIsDue() public view {
        VM.assertEq(handler.earlyCharges(), 0, "a period was paid before it was due");
    }

    /// @notice While the clock stands still (so in one transaction too), a subscription pays at most `maxBacklog`
    ///         periods, however many fell due while the keeper was away or billing was paused.
    function invariant_atMostMaxBacklogPeriodsPerCharge() public view {
        VM.assertEq(handler.backlogExceeded(), 0, "a subscription paid more than maxBacklog periods at once");
    }

    /// @notice Each charge call pays exactly what its customers paid to their merchant's current beneficiary, and
    ///         nothing to the merchant's other account.
    function invariant_chargesPayOnlyTheCurrentBeneficiary() public view {
        VM.assertEq(handler.misdirectedPayments(), 0, "a charge paid other than the current beneficiary");
    }

    /// @notice Grace runs on billing time only: each merchant's billingClock advances by exactly the seconds during
    ///         which neither billing nor the merchant was paused, and no subscription lapses before `GRACE_PERIOD` of
    ///         those seconds since it went past due.
    function invariant_graceCountsOnlyUnpausedTime() public view {
        for (uint256 m = 0; m < 2; ++m) {
            uint256 elapsed = billing.billingClock(handler.merchantIds(m)) - handler.billingClockAtStart(m);
            VM.assertEq(elapsed, handler.unpausedSeconds(m), "billing clock counted paused time");
        }
        VM.assertEq(handler.earlyLapses(), 0, "a subscription lapsed before its grace period of billing time");
    }

    /// @notice The billing contract's copy of the operator set matches the registry, and no admin is ever an operator.
    function invariant_operatorSetInStepAndSeparateFromAdmins() public view {
        address[4] memory accounts = [handler.OPERATOR(), handler.OUTSIDER(), handler.GUARDIAN(), handler.SAFE()];
        for (uint256 i = 0; i < accounts.length; ++i) {
            VM.assertTrue(
                billing.isOperator(accounts[i]) == handler.registry().isOperator(accounts[i]),
                "billing and registry disagree on an operator"
            );
        }
        VM.assertTrue(billing.isOperator(handler.OPERATOR()) == handler.operatorEnabled(), "operator state drifted");
        VM.assertTrue(!billing.isOperator(handler.GUARDIAN()) && !billing.isOperator(handler.SAFE()), "admin operator");
        VM.assertTrue(!billing.isOperator(handler.OUTSIDER()), "outsider became an operator");
    }

    /// @notice Logs what each run exercised (shown with `-vvvv`). With `failOnRevert`, every fuzzer call is one
    ///         completed handler action, so a run executes exactly `depth` actions.
    function afterInvariant() public view {
        console.log("handler calls in this run:", handler.calls());
        console.log(
            "subscriptions:",
            billing.subscriptionCount(),
            "periods charged by keepers:",
            handler.periodsCharged()
        );
        console.log("cancelled:", handler.stops(RecurringBilling.Status.Cancelled));
        console.log("lapsed:", handler.stops(RecurringBilling.Status.Lapsed));
        console.log("completed:", handler.stops(RecurringBilling.Status.Completed));
        console.log("went past due:", handler.pastDues());
    }

    function _balance(address account) private view returns (uint256) {
        return handler.token().balanceOf(account);
    }
}
