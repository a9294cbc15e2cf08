// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BillingToken} from "../../BillingToken.sol";
import {OperatorRegistry} from "../../OperatorRegistry.sol";
import {RecurringBilling} from "../../RecurringBilling.sol";
import {IOperatorRegistry} from "../../interfaces/IOperatorRegistry.sol";
import {VM} from "./CheatCodes.t.sol";

// Test-only ghost state: readable records matter more here than storage packing or a small number of variables.
// solhint-disable max-states-count, gas-struct-packing

/// @title BillingHandler
/// @notice Drives RecurringBilling through random sequences of the actions of every party (customers, operator,
///         merchant admins, the Safe, an outsider) and keeps, from its own knowledge only, the ghost state the
///         invariants compare the contracts against. Every action swallows the reverts of the calls it makes, so
///         each fuzzer call counts as exactly one executed action.
contract BillingHandler {
    /// @notice What the handler itself knows of a subscription, independent of the billing contract's accounting.
    struct Agreement {
        address customer;
        uint256 merchantIndex;
        uint256 amount;
        uint256 period;
        uint256 firstDueAt;
        uint256 maxCharges;
        uint256 cancelledAt;
        bool stopped;
        uint256 paidWhenStopped;
        RecurringBilling.Status stoppedStatus;
    }

    uint256 public constant MERCHANTS = 2;
    uint256 public constant GRACE_PERIOD = 3 days;

    address public constant SAFE = address(0x5AFE);
    address public constant OPERATOR = address(0x0B0B);
    address public constant OUTSIDER = address(0xBAD);
    address public constant SINK = address(0x51F4);

    BillingToken public immutable token;
    OperatorRegistry public immutable registry;
    RecurringBilling public immutable billing;

    /// @notice Handler actions executed (one per fuzzer call).
    uint256 public calls;
    /// @notice The campaign's clock; every action starts by warping to it, so time only moves through {warp}. The
    ///         handler reads time from here, never from block.timestamp, which via-IR may cache across a warp.
    uint256 public clock;

    address[MERCHANTS] public admins;
    address[2][MERCHANTS] public beneficiaries;
    uint256[MERCHANTS] public merchantIds;
    uint256[] public planIds;

    address[] public customers;
    mapping(address customer => uint256) public minted;
    mapping(address customer => uint256) public drained;
    /// @notice The one subscription each customer ever holds (0 when subscribing failed).
    mapping(address customer => uint256) public subscriptionOf;
    mapping(uint256 subscriptionId => Agreement) internal _agreements;

    /// @notice Successful calls that the caller had no right to make; every invariant run expects zero.
    uint256 public unauthorizedCharges;
    uint256 public unauthorizedCancels;
    uint256 public unauthorizedPauses;
    /// @notice Stopped (cancelled, lapsed, completed) subscriptions that came back to life.
    uint256 public revivedSubscriptions;

    /// @notice Coverage of the run: periods charged by charge/chargeMany, and subscriptions stopped per status.
    uint256 public periodsCharged;
    mapping(RecurringBilling.Status status => uint256) public stops;

    modifier action() {
        ++calls;
        VM.warp(clock);
        _;
        _recordStops();
    }

    constructor() {
        clock = block.timestamp;
        token = new BillingToken("Billing USD", "bUSD", address(this));
        address[] memory initialOperators = new address[](1);
        initialOperators[0] = OPERATOR;
        registry = new OperatorRegistry(SAFE, initialOperators);
        billing = new RecurringBilling(SAFE, IOperatorRegistry(address(registry)), GRACE_PERIOD);

        for (uint256 m = 0; m < MERCHANTS; ++m) {
            admins[m] = address(uint160(0xAD00 + m));
            beneficiaries[m] = [address(uint160(0xBE00 + 2 * m)), address(uint160(0xBE01 + 2 * m))];
            VM.prank(admins[m]);
            merchantIds[m] = billing.registerMerchant(beneficiaries[m][0]);
        }
        // Daily, weekly with a trial, hourly capped at 3, daily with a trial capped at 5, and the shortest period.
        _createPlan(0, 10 ether, 1 days, 0, 0);
        _createPlan(0, 7 ether, 7 days, 2 days, 0);
        _createPlan(0, 3 ether, 1 hours, 0, 3);
        _createPlan(1, 5 ether, 1 days, 1 hours, 5);
        _createPlan(1, 1 ether, 1 minutes, 0, 0);
    }

    // ----------------------------------------------------------------------------------------------- actions

    /// @notice A new customer, funded with `funds` and approving `approvedPeriods` periods, subscribes to a plan.
    /// @param planSeed Picks the plan.
    /// @param funds Tokens minted to the customer (bounded to a few periods, possibly too few).
    /// @param approvedPeriods Periods of allowance granted (bounded, possibly zero).
    function subscribe(uint256 planSeed, uint256 funds, uint256 approvedPeriods) external action {
        uint256 planId = planIds[planSeed % planIds.length];
        RecurringBilling.Plan memory plan = billing.getPlan(planId);
        address customer = address(uint160(0xC0000 + customers.length));
        customers.push(customer);
        // Mostly enough for a few periods; one time in eight, anything from nothing to one period.
        _mint(customer, funds % 8 == 0 ? (funds >> 8) % (plan.amount + 1) : plan.amount * (1 + (funds % 6)));
        VM.prank(customer);
        token.approve(address(billing), plan.amount * (approvedPeriods % 7));

        VM.prank(customer);
        try billing.subscribe(planId) returns (uint256 subscriptionId) {
            subscriptionOf[customer] = subscriptionId;
            _agreements[subscriptionId] = Agreement({
                customer: customer,
                merchantIndex: plan.merchantId == merchantIds[0] ? 0 : 1,
                amount: plan.amount,
                period: plan.period,
                firstDueAt: clock + plan.trialPeriod,
                maxCharges: plan.maxCharges,
                cancelledAt: 0,
                stopped: false,
                paidWhenStopped: 0,
                stoppedStatus: RecurringBilling.Status.None
            });
        } catch {}
    }

    /// @notice Someone calls {RecurringBilling.charge} on a (possibly unknown) subscription.
    /// @param idSeed Picks the subscription.
    /// @param callerSeed Picks the caller.
    function charge(uint256 idSeed, uint256 callerSeed) external action {
        uint256 subscriptionId = _pickId(idSeed);
        address caller = _pickCaller(callerSeed, subscriptionId);
        uint256 countBefore = billing.getSubscription(subscriptionId).chargeCount;
        VM.prank(caller);
        try billing.charge(subscriptionId) {} catch {}
        uint256 countAfter = billing.getSubscription(subscriptionId).chargeCount;
        periodsCharged += countAfter - countBefore;
        if (countAfter != countBefore && !_mayCharge(caller, subscriptionId)) ++unauthorizedCharges;
    }

    /// @notice Someone calls {RecurringBilling.chargeMany} on up to 8 ids, with repeats and unknown ids.
    /// @param idsSeed Picks the ids.
    /// @param length Number of ids (bounded to 1..8).
    /// @param callerSeed Picks the caller.
    function chargeMany(uint256 idsSeed, uint256 length, uint256 callerSeed) external action {
        uint256[] memory ids = new uint256[](1 + (length % 8));
        uint256[] memory countsBefore = new uint256[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            ids[i] = _pickId(uint256(keccak256(abi.encode(idsSeed, i))));
            countsBefore[i] = billing.getSubscription(ids[i]).chargeCount;
        }
        address caller = _pickCaller(callerSeed, ids[0]);
        VM.prank(caller);
        try billing.chargeMany(ids) returns (uint256 charged) {
            periodsCharged += charged;
        } catch {}
        for (uint256 i = 0; i < ids.length; ++i) {
            bool charged = billing.getSubscription(ids[i]).chargeCount != countsBefore[i];
            if (charged && !_mayCharge(caller, ids[i])) ++unauthorizedCharges;
        }
    }

    /// @notice The customer (one time in eight) or, mostly in vain, another party tries to cancel a subscription.
    /// @param idSeed Picks the subscription.
    /// @param callerSeed Picks the caller.
    function cancel(uint256 idSeed, uint256 callerSeed) external action {
        uint256 subscriptionId = _pickId(idSeed);
        Agreement storage agreement = _agreements[subscriptionId];
        bool byCustomer = callerSeed % 8 == 7 && agreement.customer != address(0);
        address caller = byCustomer ? agreement.customer : _pickCaller(callerSeed >> 8, subscriptionId);
        VM.prank(caller);
        try billing.cancel(subscriptionId) {
            bool mayCancel = caller == agreement.customer || caller == admins[agreement.merchantIndex];
            if (!mayCancel) ++unauthorizedCancels;
            agreement.cancelledAt = clock;
        } catch {}
    }

    /// @notice The Safe (or, in vain, the operator) pauses (one time in four) or unpauses billing globally.
    /// @param seed Picks pause or unpause.
    /// @param bySafe Whether the Safe calls (otherwise the operator).
    function setGlobalPause(uint256 seed, bool bySafe) external action {
        bool pause = seed % 4 == 0;
        bool succeeded;
        VM.prank(bySafe ? SAFE : OPERATOR);
        if (pause) {
            try billing.pause() {
                succeeded = true;
            } catch {}
        } else {
            try billing.unpause() {
                succeeded = true;
            } catch {}
        }
        if (succeeded && !bySafe) ++unauthorizedPauses;
    }

    /// @notice A merchant admin (or, in vain, the operator) pauses (one time in four) or unpauses its merchant.
    /// @param merchantSeed Picks the merchant, and pause or unpause.
    /// @param byAdmin Whether the admin calls (otherwise the operator).
    function setMerchantPause(uint256 merchantSeed, bool byAdmin) external action {
        uint256 m = merchantSeed % MERCHANTS;
        bool pause = (merchantSeed >> 8) % 4 == 0;
        VM.prank(byAdmin ? admins[m] : OPERATOR);
        try billing.setMerchantPaused(merchantIds[m], pause) {
            if (!byAdmin) ++unauthorizedPauses;
        } catch {}
    }

    /// @notice A merchant admin switches its beneficiary between its two accounts.
    /// @param merchantSeed Picks the merchant.
    /// @param which Picks the beneficiary.
    function setBeneficiary(uint256 merchantSeed, bool which) external action {
        uint256 m = merchantSeed % MERCHANTS;
        VM.prank(admins[m]);
        billing.setBeneficiary(merchantIds[m], beneficiaries[m][which ? 1 : 0]);
    }

    /// @notice Time passes (up to 5 days).
    /// @param secondsForward How long (bounded).
    function warp(uint256 secondsForward) external action {
        clock += secondsForward % (5 days + 1);
        VM.warp(clock);
    }

    /// @notice What the keeper does: time passes (up to 2 days), then the operator charges every subscription in one
    ///         chargeMany.
    /// @param secondsForward How long (bounded).
    function keeperRound(uint256 secondsForward) external action {
        clock += secondsForward % (2 days + 1);
        VM.warp(clock);
        uint256[] memory ids = new uint256[](billing.subscriptionCount());
        for (uint256 i = 0; i < ids.length; ++i) ids[i] = i + 1;
        VM.prank(OPERATOR);
        try billing.chargeMany(ids) returns (uint256 charged) {
            periodsCharged += charged;
        } catch {}
    }

    /// @notice A customer moves part of its balance away, so later charges may fail.
    /// @param customerSeed Picks the customer.
    /// @param percent Share of the balance moved (bounded to 0..100).
    function drain(uint256 customerSeed, uint256 percent) external action {
        if (customers.length == 0) return;
        address customer = customers[customerSeed % customers.length];
        uint256 value = (token.balanceOf(customer) * (percent % 101)) / 100;
        drained[customer] += value;
        VM.prank(customer);
        token.transfer(SINK, value);
    }

    /// @notice A customer gets more tokens (up to 3 periods' worth).
    /// @param customerSeed Picks the customer.
    /// @param periods How many periods' worth (bounded).
    function refill(uint256 customerSeed, uint256 periods) external action {
        if (customers.length == 0) return;
        address customer = customers[customerSeed % customers.length];
        _mint(customer, _agreements[subscriptionOf[customer]].amount * (periods % 4));
    }

    /// @notice A customer sets its allowance to a number of periods (possibly zero).
    /// @param customerSeed Picks the customer.
    /// @param periods How many periods (bounded to 0..6).
    function setAllowance(uint256 customerSeed, uint256 periods) external action {
        if (customers.length == 0) return;
        address customer = customers[customerSeed % customers.length];
        VM.prank(customer);
        token.approve(address(billing), _agreements[subscriptionOf[customer]].amount * (periods % 7));
    }

    // ------------------------------------------------------------------------------------------------ views

    /// @notice The handler's own record of `subscriptionId`.
    /// @param subscriptionId The subscription.
    /// @return The agreement (zero customer if subscribing failed or the id is unknown).
    function agreementOf(uint256 subscriptionId) external view returns (Agreement memory) {
        return _agreements[subscriptionId];
    }

    /// @notice Number of customers created so far.
    /// @return The count.
    function customerCount() external view returns (uint256) {
        return customers.length;
    }

    /// @notice What `customer` has paid so far: everything it received minus what it holds and moved away itself.
    /// @param customer The customer.
    /// @return The amount, from token balances only.
    function paidBy(address customer) public view returns (uint256) {
        return minted[customer] - drained[customer] - token.balanceOf(customer);
    }

    /// @notice The most `subscriptionId` may have cost so far: amount x periods started (up to cancellation), capped.
    /// @param subscriptionId The subscription.
    /// @return The bound.
    function maxOwed(uint256 subscriptionId) external view returns (uint256) {
        Agreement memory agreement = _agreements[subscriptionId];
        if (agreement.customer == address(0)) return 0;
        uint256 end = agreement.cancelledAt != 0 ? agreement.cancelledAt : clock;
        if (end < agreement.firstDueAt) return 0;
        uint256 periods = (end - agreement.firstDueAt) / agreement.period + 1;
        if (agreement.maxCharges != 0 && periods > agreement.maxCharges) periods = agreement.maxCharges;
        return periods * agreement.amount;
    }

    // ------------------------------------------------------------------------------------------------ internals

    function _createPlan(uint256 m, uint256 amount, uint32 period, uint32 trial, uint32 maxCharges) private {
        VM.prank(admins[m]);
        planIds.push(billing.createPlan(merchantIds[m], address(token), amount, period, trial, maxCharges));
    }

    function _mint(address customer, uint256 value) private {
        minted[customer] += value;
        token.mint(customer, value);
    }

    /// @dev Mostly existing ids, sometimes the next (unknown) one.
    function _pickId(uint256 seed) private view returns (uint256) {
        return 1 + (seed % (billing.subscriptionCount() + 1));
    }

    /// @dev The operator (1/2), the subscription's merchant admin (1/4), the other merchant's admin or an outsider.
    function _pickCaller(uint256 seed, uint256 subscriptionId) private view returns (address) {
        uint256 m = _agreements[subscriptionId].merchantIndex;
        uint256 choice = seed % 8;
        if (choice < 4) return OPERATOR;
        if (choice < 6) return admins[m];
        if (choice == 6) return admins[(m + 1) % MERCHANTS];
        return OUTSIDER;
    }

    function _mayCharge(address caller, uint256 subscriptionId) private view returns (bool) {
        return caller == OPERATOR || caller == admins[_agreements[subscriptionId].merchantIndex];
    }

    /// @dev Records, from the handler's side, when a subscription stops and how much its customer had paid by then;
    ///      flags any stopped subscription whose status changes again.
    function _recordStops() private {
        uint256 count = billing.subscriptionCount();
        for (uint256 id = 1; id <= count; ++id) {
            Agreement storage agreement = _agreements[id];
            RecurringBilling.Status status = billing.statusOf(id);
            if (agreement.stopped) {
                if (status != agreement.stoppedStatus) ++revivedSubscriptions;
            } else if (
                status == RecurringBilling.Status.Cancelled ||
                status == RecurringBilling.Status.Lapsed ||
                status == RecurringBilling.Status.Completed
            ) {
                agreement.stopped = true;
                ++stops[status];
                agreement.stoppedStatus = status;
                agreement.paidWhenStopped = paidBy(agreement.customer);
            }
        }
    }
}
