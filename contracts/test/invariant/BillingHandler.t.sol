// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {BillingToken} from "../../BillingToken.sol";
import {OperatorRegistry} from "../../OperatorRegistry.sol";
import {RecurringBilling} from "../../RecurringBilling.sol";
import {VM} from "./CheatCodes.t.sol";

// Test-only ghost state: readable records matter more here than storage packing or a small number of variables.
// solhint-disable max-states-count, gas-struct-packing

/// @title BillingHandler
/// @notice Drives RecurringBilling through random sequences of the actions of every party (customers, operator,
///         merchant admins, the Safe, the guardian, an outsider) and keeps, from its own knowledge only, the ghost
///         state the invariants compare the contracts against. Every action swallows the reverts of the calls it
///         makes, so each fuzzer call counts as exactly one executed action.
contract BillingHandler {
    /// @notice What the handler itself knows of a subscription, independent of the billing contract's accounting.
    struct Agreement {
        address customer;
        uint256 merchantIndex;
        uint256 amount;
        uint256 period;
        uint256 firstDueAt;
        uint256 maxCharges;
        uint256 maxBacklog;
        uint256 cancelledAt;
        bool stopped;
        uint256 paidWhenStopped;
        RecurringBilling.Status stoppedStatus;
        RecurringBilling.Status lastStatus;
        /// Unpaused seconds of its merchant (the ghost billing clock) when it last went past due.
        uint256 pastDueAtBillingSeconds;
    }

    uint256 public constant MERCHANTS = 2;
    uint256 public constant GRACE_PERIOD = 3 days;

    address public constant SAFE = address(0x5AFE);
    address public constant GUARDIAN = address(0x6A4D);
    address public constant OPERATOR = address(0x0B0B);
    address public constant OUTSIDER = address(0xBAD);
    address public constant SINK = address(0x51F4);

    BillingToken public immutable token;
    OperatorRegistry public immutable registry;
    RecurringBilling public immutable billing;

    /// @notice Handler actions executed (one per fuzzer call).
    uint256 public calls;
    /// @notice The campaign's clock; every action starts by warping to it, so time only moves through {warp} and
    ///         {keeperRound}. The handler reads time from here, never from block.timestamp, which via-IR may cache
    ///         across a warp.
    uint256 public clock;

    address[MERCHANTS] public admins;
    address[2][MERCHANTS] public beneficiaries;
    uint256[MERCHANTS] public merchantIds;
    uint256[] public planIds;

    /// @notice Pause states as the handler set them.
    bool public globallyPaused;
    bool[MERCHANTS] public merchantPaused;
    /// @notice Whether OPERATOR is registered, as the handler set it.
    bool public operatorEnabled = true;
    /// @notice Seconds that passed while neither billing nor the merchant was paused: the ghost billing clock.
    uint256[MERCHANTS] public unpausedSeconds;
    /// @notice `billing.billingClock(merchant)` at deployment, the origin of the ghost clock.
    uint256[MERCHANTS] public billingClockAtStart;

    address[] public customers;
    mapping(address customer => uint256) public minted;
    mapping(address customer => uint256) public drained;
    /// @notice The one subscription each customer ever holds (0 when subscribing failed).
    mapping(address customer => uint256) public subscriptionOf;
    mapping(uint256 subscriptionId => Agreement) internal _agreements;
    mapping(uint256 subscriptionId => RecurringBilling.SubscriptionRef) internal _refs;
    /// @dev Periods charged to a subscription since the clock last moved (see `backlogExceeded`).
    mapping(uint256 subscriptionId => uint256) internal _chargedAtClock;
    mapping(uint256 subscriptionId => uint256) internal _lastChargeClock;

    /// @notice Successful calls that the caller had no right to make; every invariant run expects zero.
    uint256 public unauthorizedCharges;
    uint256 public unauthorizedCancels;
    uint256 public unauthorizedPauses;
    uint256 public unauthorizedRegistryChanges;
    /// @notice Stopped (cancelled, lapsed, completed) subscriptions that came back to life.
    uint256 public revivedSubscriptions;
    /// @notice Charges of a period that was not yet due when it was paid.
    uint256 public earlyCharges;
    /// @notice Times a subscription paid more than `maxBacklog` periods without the clock moving.
    uint256 public backlogExceeded;
    /// @notice Charge calls after which a merchant's current beneficiary did not receive exactly what its customers
    ///         paid in that call, or its other account received anything.
    uint256 public misdirectedPayments;
    /// @notice Subscriptions that lapsed before `GRACE_PERIOD` unpaused seconds had passed since they went past due.
    uint256 public earlyLapses;

    /// @notice Coverage of the run: periods charged by charge/chargeMany, subscriptions stopped per status,
    ///         and failures, past-dues and forgiven periods seen.
    uint256 public periodsCharged;
    uint256 public pastDues;
    mapping(RecurringBilling.Status status => uint256) public stops;

    modifier action() {
        ++calls;
        VM.warp(clock);
        _;
        _recordStatuses();
    }

    constructor() {
        clock = block.timestamp;
        token = new BillingToken("Billing USD", "bUSD", address(this));
        address[] memory initialOperators = new address[](1);
        initialOperators[0] = OPERATOR;
        billing = new RecurringBilling(SAFE, initialOperators, GUARDIAN, GRACE_PERIOD);
        registry = billing.registry();

        for (uint256 m = 0; m < MERCHANTS; ++m) {
            admins[m] = address(uint160(0xAD00 + m));
            beneficiaries[m] = [address(uint160(0xBE00 + 2 * m)), address(uint160(0xBE01 + 2 * m))];
            VM.prank(admins[m]);
            merchantIds[m] = billing.registerMerchant(beneficiaries[m][0]);
            billingClockAtStart[m] = billing.billingClock(merchantIds[m]);
        }
        // Daily (backlog 1, the default), weekly with a trial (backlog 3), hourly capped at 3 (backlog 2), daily with
        // a trial capped at 5 (backlog 12), and the shortest period (backlog 255).
        _createPlan(0, 10 ether, 1 days, 0, 0, 1);
        _createPlan(0, 7 ether, 7 days, 2 days, 0, 3);
        _createPlan(0, 3 ether, 1 hours, 0, 3, 2);
        _createPlan(1, 5 ether, 1 days, 1 hours, 5, 12);
        _createPlan(1, 1 ether, 1 minutes, 0, 0, 255);
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
            _refs[subscriptionId] = RecurringBilling.SubscriptionRef({
                id: subscriptionId,
                customer: customer,
                amount: plan.amount,
                token: plan.token
            });
            _agreements[subscriptionId] = Agreement({
                customer: customer,
                merchantIndex: plan.merchantId == merchantIds[0] ? 0 : 1,
                amount: plan.amount,
                period: plan.period,
                firstDueAt: clock + plan.trialPeriod,
                maxCharges: plan.maxCharges,
                maxBacklog: plan.maxBacklog,
                cancelledAt: 0,
                stopped: false,
                paidWhenStopped: 0,
                stoppedStatus: RecurringBilling.Status.None,
                lastStatus: RecurringBilling.Status.None,
                pastDueAtBillingSeconds: 0
            });
        } catch {}
    }

    /// @notice Someone calls {RecurringBilling.charge} on a (possibly unknown or forged) ref.
    /// @param refSeed Picks the ref.
    /// @param callerSeed Picks the caller.
    function charge(uint256 refSeed, uint256 callerSeed) external action {
        RecurringBilling.SubscriptionRef memory ref = _pickRef(refSeed);
        address caller = _pickCaller(callerSeed, ref.id);
        (uint256[] memory counts, uint256[2][MERCHANTS] memory balances) = _snapshot();
        VM.prank(caller);
        try billing.charge(ref) {} catch {}
        _checkCharges(caller, counts, balances);
    }

    /// @notice Someone calls {RecurringBilling.chargeMany} on up to 8 refs, with repeats, unknown and forged refs.
    /// @param refsSeed Picks the refs.
    /// @param length Number of refs (bounded to 1..8).
    /// @param callerSeed Picks the caller.
    function chargeMany(uint256 refsSeed, uint256 length, uint256 callerSeed) external action {
        RecurringBilling.SubscriptionRef[] memory refs = new RecurringBilling.SubscriptionRef[](1 + (length % 8));
        for (uint256 i = 0; i < refs.length; ++i) {
            refs[i] = _pickRef(uint256(keccak256(abi.encode(refsSeed, i))));
        }
        address caller = _pickCaller(callerSeed, refs[0].id);
        (uint256[] memory counts, uint256[2][MERCHANTS] memory balances) = _snapshot();
        VM.prank(caller);
        try billing.chargeMany(refs) {} catch {}
        _checkCharges(caller, counts, balances);
    }

    /// @notice The customer (one time in eight) or, mostly in vain, another party tries to cancel a subscription.
    /// @param refSeed Picks the subscription.
    /// @param callerSeed Picks the caller.
    function cancel(uint256 refSeed, uint256 callerSeed) external action {
        RecurringBilling.SubscriptionRef memory ref = _pickRef(refSeed);
        Agreement storage agreement = _agreements[ref.id];
        bool byCustomer = callerSeed % 8 == 7 && agreement.customer != address(0);
        address caller = byCustomer ? agreement.customer : _pickCaller(callerSeed >> 8, ref.id);
        VM.prank(caller);
        try billing.cancel(ref) {
            bool mayCancel = caller == agreement.customer || caller == admins[agreement.merchantIndex];
            if (!mayCancel) ++unauthorizedCancels;
            agreement.cancelledAt = clock;
        } catch {}
    }

    /// @notice The Safe (or, in vain, the operator or the guardian) pauses (one time in four) or unpauses billing.
    /// @param seed Picks pause or unpause, and the caller.
    /// @param bySafe Whether the Safe calls (otherwise the operator or the guardian).
    function setGlobalPause(uint256 seed, bool bySafe) external action {
        bool pause = seed % 4 == 0;
        address caller = bySafe ? SAFE : ((seed >> 8) % 2 == 0 ? OPERATOR : GUARDIAN);
        bool succeeded;
        VM.prank(caller);
        if (pause) {
            try billing.pause() {
                succeeded = true;
            } catch {}
        } else {
            try billing.unpause() {
                succeeded = true;
            } catch {}
        }
        if (!succeeded) return;
        if (!bySafe) ++unauthorizedPauses;
        globallyPaused = pause;
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
            merchantPaused[m] = pause;
        } catch {}
    }

    /// @notice The guardian or the Safe revokes the operator, or the Safe registers it again; the operator itself
    ///         tries, in vain, to register the outsider.
    /// @param seed Picks who acts.
    function rotateOperator(uint256 seed) external action {
        address[] memory accounts = new address[](1);
        accounts[0] = OPERATOR;
        address[] memory none = new address[](0);
        if (operatorEnabled) {
            VM.prank(seed % 2 == 0 ? GUARDIAN : SAFE);
            try registry.revokeOperators(accounts) {
                operatorEnabled = false;
            } catch {}
        } else {
            VM.prank(SAFE);
            try registry.rotateOperators(none, accounts) {
                operatorEnabled = true;
            } catch {}
        }
        accounts[0] = OUTSIDER;
        VM.prank(OPERATOR);
        try registry.rotateOperators(none, accounts) {
            ++unauthorizedRegistryChanges;
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
        _advance(secondsForward % (5 days + 1));
    }

    /// @notice Time passes to a subscription's next due time or to one or two seconds before it, where off-by-one
    ///         errors in the schedule would show.
    /// @param refSeed Picks the subscription.
    /// @param secondsBefore How far before the due time (bounded to 0..2).
    function warpToDue(uint256 refSeed, uint256 secondsBefore) external action {
        uint256 count = billing.subscriptionCount();
        if (count == 0) return;
        uint256 target = billing.getSubscription(_refs[1 + (refSeed % count)]).nextChargeAt - (secondsBefore % 3);
        if (target > clock) _advance(target - clock);
    }

    /// @notice What the keeper does: time passes (up to 2 days), then the operator charges every subscription in one
    ///         chargeMany.
    /// @param secondsForward How long (bounded).
    function keeperRound(uint256 secondsForward) external action {
        _advance(secondsForward % (2 days + 1));
        uint256 count = billing.subscriptionCount();
        RecurringBilling.SubscriptionRef[] memory refs = new RecurringBilling.SubscriptionRef[](count);
        for (uint256 i = 0; i < count; ++i) refs[i] = _refs[i + 1];
        (uint256[] memory counts, uint256[2][MERCHANTS] memory balances) = _snapshot();
        VM.prank(OPERATOR);
        try billing.chargeMany(refs) {} catch {}
        _checkCharges(OPERATOR, counts, balances);
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

    /// @notice The ref of `subscriptionId` as the handler learnt it at subscribe time.
    /// @param subscriptionId The subscription.
    /// @return The ref (zero customer if unknown).
    function refOf(uint256 subscriptionId) external view returns (RecurringBilling.SubscriptionRef memory) {
        return _refs[subscriptionId];
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

    function _createPlan(
        uint256 m,
        uint256 amount,
        uint32 period,
        uint32 trial,
        uint32 maxCharges,
        uint8 maxBacklog
    ) private {
        VM.prank(admins[m]);
        planIds.push(billing.createPlan(merchantIds[m], address(token), amount, period, trial, maxCharges, maxBacklog));
    }

    function _mint(address customer, uint256 value) private {
        minted[customer] += value;
        token.mint(customer, value);
    }

    /// @dev Moves the clock, and each merchant's ghost billing clock while neither it nor billing is paused.
    function _advance(uint256 secondsForward) private {
        clock += secondsForward;
        VM.warp(clock);
        for (uint256 m = 0; m < MERCHANTS; ++m) {
            if (!globallyPaused && !merchantPaused[m]) unpausedSeconds[m] += secondsForward;
        }
    }

    /// @dev Mostly existing refs; sometimes the next (unknown) id, or an existing id with a forged customer or amount.
    function _pickRef(uint256 seed) private view returns (RecurringBilling.SubscriptionRef memory ref) {
        uint256 id = 1 + (seed % (billing.subscriptionCount() + 1));
        ref = _refs[id];
        ref.id = id;
        uint256 forgery = (seed >> 128) % 16;
        if (forgery == 0) ref.customer = OUTSIDER;
        if (forgery == 1) ref.amount = 2 * ref.amount + 1;
    }

    /// @dev The operator, the subscription's merchant admin or customer, the other merchant's admin, an outsider or
    ///      the guardian.
    function _pickCaller(uint256 seed, uint256 subscriptionId) private view returns (address) {
        uint256 m = _agreements[subscriptionId].merchantIndex;
        uint256 choice = seed % 10;
        if (choice < 4) return OPERATOR;
        if (choice < 6) return admins[m];
        if (choice == 6 && _agreements[subscriptionId].customer != address(0))
            return _agreements[subscriptionId].customer;
        if (choice == 7) return admins[(m + 1) % MERCHANTS];
        if (choice == 8) return GUARDIAN;
        return OUTSIDER;
    }

    function _mayCharge(address caller, uint256 subscriptionId) private view returns (bool) {
        Agreement storage agreement = _agreements[subscriptionId];
        return
            (caller == OPERATOR && operatorEnabled) ||
            caller == admins[agreement.merchantIndex] ||
            caller == agreement.customer;
    }

    /// @dev Every subscription's paid periods and every beneficiary account's balance, before a charge call.
    function _snapshot() private view returns (uint256[] memory counts, uint256[2][MERCHANTS] memory balances) {
        uint256 count = billing.subscriptionCount();
        counts = new uint256[](count + 1);
        for (uint256 id = 1; id <= count; ++id) counts[id] = billing.getSubscription(_refs[id]).chargeCount;
        for (uint256 m = 0; m < MERCHANTS; ++m) {
            balances[m] = [token.balanceOf(beneficiaries[m][0]), token.balanceOf(beneficiaries[m][1])];
        }
    }

    /// @dev After a charge call by `caller`: who may have charged, whether each paid period was due, whether a
    ///      subscription paid more than its backlog while the clock stood still, and whether every token paid went to
    ///      its merchant's current beneficiary.
    function _checkCharges(
        address caller,
        uint256[] memory countsBefore,
        uint256[2][MERCHANTS] memory balancesBefore
    ) private {
        uint256[MERCHANTS] memory paidToMerchant;
        for (uint256 id = 1; id < countsBefore.length; ++id) {
            RecurringBilling.Subscription memory sub = billing.getSubscription(_refs[id]);
            uint256 periods = sub.chargeCount - countsBefore[id];
            if (periods == 0) continue;
            Agreement storage agreement = _agreements[id];
            periodsCharged += periods;
            paidToMerchant[agreement.merchantIndex] += periods * agreement.amount;
            if (!_mayCharge(caller, id)) ++unauthorizedCharges;
            // The last period paid fell due at nextChargeAt - period (at nextChargeAt once completed).
            bool completed = sub.status == RecurringBilling.Status.Completed;
            uint256 lastPaidDueAt = completed ? sub.nextChargeAt : sub.nextChargeAt - agreement.period;
            if (lastPaidDueAt > clock) ++earlyCharges;
            if (_lastChargeClock[id] != clock) {
                _lastChargeClock[id] = clock;
                _chargedAtClock[id] = 0;
            }
            _chargedAtClock[id] += periods;
            if (_chargedAtClock[id] > agreement.maxBacklog) ++backlogExceeded;
        }
        for (uint256 m = 0; m < MERCHANTS; ++m) {
            address current = billing.getMerchant(merchantIds[m]).billing.beneficiary;
            uint256 which = current == beneficiaries[m][0] ? 0 : 1;
            uint256 toCurrent = token.balanceOf(beneficiaries[m][which]) - balancesBefore[m][which];
            uint256 toOther = token.balanceOf(beneficiaries[m][1 - which]) - balancesBefore[m][1 - which];
            if (toCurrent != paidToMerchant[m] || toOther != 0) ++misdirectedPayments;
        }
    }

    /// @dev Records, from the handler's side, when a subscription goes past due, lapses or stops, how much its customer
    ///      had paid by then; flags a lapse before the grace period and any stopped subscription whose status changes.
    function _recordStatuses() private {
        uint256 count = billing.subscriptionCount();
        for (uint256 id = 1; id <= count; ++id) {
            Agreement storage agreement = _agreements[id];
            RecurringBilling.Status status = billing.getSubscription(_refs[id]).status;
            uint256 billingSeconds = unpausedSeconds[agreement.merchantIndex];
            if (status == RecurringBilling.Status.PastDue && agreement.lastStatus != RecurringBilling.Status.PastDue) {
                agreement.pastDueAtBillingSeconds = billingSeconds;
                ++pastDues;
            }
            if (status == RecurringBilling.Status.Lapsed && agreement.lastStatus != RecurringBilling.Status.Lapsed) {
                if (billingSeconds - agreement.pastDueAtBillingSeconds < GRACE_PERIOD) ++earlyLapses;
            }
            agreement.lastStatus = status;
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
