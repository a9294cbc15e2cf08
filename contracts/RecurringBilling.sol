// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IOperatorSink} from "./interfaces/IOperatorRegistry.sol";
import {OperatorRegistry} from "./OperatorRegistry.sol";

/// @title RecurringBilling
/// @notice Merchants publish plans; customers subscribe; registered operators (or the merchant admin, or the customer)
///         trigger the charges that are due. The contract enforces every rule, so an operator key can only do what the
///         customer and merchant already agreed to: charge a due period, the agreed amount, to the merchant's
///         beneficiary, at most `maxBacklog` periods at once and then at most one period per period.
/// @dev Subscriptions. A subscription copies its plan's terms at subscribe time. It is addressed by a
///      {SubscriptionRef}: the contract-assigned id together with the terms that never change (customer, token,
///      amount). Its one storage word lives at `keccak256(abi.encode(ref))`, so a charge reads and writes exactly one
///      word of subscription state, and a ref with a wrong customer, token or amount finds no subscription at all.
///
///      Schedule: anchored. A charge pays one period and moves `nextChargeAt` forward by one period. When more than
///      `maxBacklog` periods are due, the older ones are forgiven first (the schedule moves to the current period), so
///      the total ever taken is at most `amount` x min(periods elapsed, `maxCharges`), a late charge catches up at
///      most `maxBacklog` periods, and a pause never piles up a debt.
///
///      Pauses and grace. Time paused (globally by the owner, or per merchant by its admin) does not count towards a
///      past-due subscription's grace period: grace is measured on a billing clock that stops while billing is paused
///      (see {billingClock}). A customer can settle a past-due subscription themselves with {charge}.
///
///      Operators. The {OperatorRegistry} this contract creates pushes every operator change into `_operatorStatus`,
///      which also carries the global pause, so an operator's charge reads one word to know it may charge.
///
///      Tokens: any ERC-20, through a SafeERC20-compatible call (tokens that return no bool work), given at most
///      {TOKEN_CALL_GAS}: a token that reverts, returns false or burns all gas fails only its own item. A call starved
///      by the caller's gas limit (the 1/64 rule) reverts the transaction instead of failing a funded customer.
///      Fee-on-transfer and rebasing tokens are not supported for merchants: the customer is debited exactly
///      `amount`, and the beneficiary receives whatever the token delivers. A merchant must not create a plan in such
///      a token; the contract cannot tell and does not pay to check, to keep charges cheap.
///
///      Immutable: no proxy, no upgrade path. A new version is a new deployment.
contract RecurringBilling is IOperatorSink, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Lifecycle of a subscription.
    /// @dev `None` marks a ref that addresses no subscription.
    enum Status {
        None,
        Active,
        PastDue,
        Cancelled,
        Lapsed,
        Completed
    }

    /// @notice Why {chargeMany} passed over an item without charging it.
    enum SkipReason {
        UnknownSubscription,
        Unauthorized,
        NotActive,
        MerchantPaused,
        NotDue
    }

    /// @notice Identifies a subscription: its contract-assigned id and the terms that locate its storage.
    /// @dev All four come from the {Subscribed} event. A ref with any field wrong addresses no subscription. The field
    ///      order is chosen so that {charge}'s selector sorts first in the dispatcher (about 700 gas a call).
    struct SubscriptionRef {
        uint256 id;
        address customer;
        uint256 amount;
        address token;
    }

    /// @notice The part of a merchant every charge reads: one storage word.
    /// @dev `pausedAtClock` and `pausedSeconds` are in global-clock seconds (see {billingClock}), so time the merchant
    ///      spends paused during a global pause is not subtracted twice.
    struct MerchantBilling {
        address beneficiary;
        bool paused;
        uint40 pausedAtClock;
        uint40 pausedSeconds;
    }

    /// @notice A merchant: where it is paid, whether it is paused, and who administers it.
    struct Merchant {
        MerchantBilling billing;
        address admin;
        address pendingAdmin;
    }

    /// @notice A merchant's offer. Terms never change after creation; a plan can only be (de)activated.
    struct Plan {
        address token;
        uint32 merchantId;
        uint32 period;
        uint8 maxBacklog;
        bool active;
        uint96 amount;
        uint32 trialPeriod;
        uint32 maxCharges;
    }

    /// @notice A subscription's state and the terms a ref does not carry, as stored in one word (see `_SUB_*`).
    /// @dev `chargeCount` is the number of periods paid. `pastDueClock` is the {billingClock} of the first failed
    ///      payment (meaningful while past due). Times are uint40 (seconds; valid for 34,000 years).
    // The fields sum to exactly 256 bits and are packed by hand into one word; solhint's heuristic misreads the enum.
    // solhint-disable-next-line gas-struct-packing
    struct Subscription {
        uint40 nextChargeAt;
        Status status;
        uint32 merchantId;
        uint32 period;
        uint32 chargeCount;
        uint32 maxCharges;
        uint8 maxBacklog;
        uint40 pastDueClock;
        uint32 planId;
    }

    /// @notice The global pause and the seconds billing has spent globally paused, in one word.
    struct GlobalPause {
        bool paused;
        uint40 pausedAt;
        uint40 pausedSeconds;
    }

    /// @dev What one charge attempt came to; {chargeMany} needs to tell "not allowed" from everything else.
    enum Outcome {
        Charged,
        NotCharged,
        Unauthorized
    }

    /// @notice Shortest period a plan may have.
    uint256 public constant MIN_PERIOD = 1 minutes;
    /// @notice Shortest grace period the contract accepts.
    uint256 public constant MIN_GRACE_PERIOD = 1 hours;
    /// @notice Longest grace period the contract accepts.
    uint256 public constant MAX_GRACE_PERIOD = 365 days;
    /// @notice Gas forwarded to a token's `transferFrom` in a charge; more than any standard token needs, and a bound
    ///         on what a hostile token can burn of a batch.
    uint256 public constant TOKEN_CALL_GAS = 200_000;

    // Bit offsets of a subscription's fields in its storage word (see {Subscription}). A charge reads the word once
    // and writes it once; packing by hand keeps that true, where a struct write would store field by field.
    uint256 private constant _SUB_NEXT_CHARGE_AT = 0; // uint40
    uint256 private constant _SUB_STATUS = 40; // uint8
    uint256 private constant _SUB_MERCHANT_ID = 48; // uint32
    uint256 private constant _SUB_PERIOD = 80; // uint32
    uint256 private constant _SUB_CHARGE_COUNT = 112; // uint32
    uint256 private constant _SUB_MAX_CHARGES = 144; // uint32
    uint256 private constant _SUB_MAX_BACKLOG = 176; // uint8
    uint256 private constant _SUB_PAST_DUE_CLOCK = 184; // uint40
    uint256 private constant _SUB_PLAN_ID = 224; // uint32
    /// @dev The fields a charge rewrites: schedule, status and count.
    uint256 private constant _SUB_SCHEDULE_MASK =
        (uint256(type(uint40).max) << _SUB_NEXT_CHARGE_AT) |
            (uint256(type(uint8).max) << _SUB_STATUS) |
            (uint256(type(uint32).max) << _SUB_CHARGE_COUNT);
    uint256 private constant _ACTIVE = uint256(Status.Active);
    uint256 private constant _PAST_DUE = uint256(Status.PastDue);

    uint256 private constant OPERATOR_NONE = 0;
    uint256 private constant OPERATOR_ACTIVE = 1;
    uint256 private constant OPERATOR_PAUSED = 2;

    /// @notice Registry of the operators allowed to charge, created by this contract and owned by the Safe.
    OperatorRegistry public immutable registry;

    /// @notice Unpaused seconds a subscription may stay past due before the next charge attempt lapses it.
    uint256 public immutable gracePeriod;

    /// @notice Number of merchants registered; merchant ids run from 1 to this.
    uint32 public merchantCount;
    /// @notice Number of plans created; plan ids run from 1 to this.
    uint32 public planCount;
    /// @notice Number of subscriptions created; subscription ids run from 1 to this.
    uint64 public subscriptionCount;

    GlobalPause private _pause;

    /// @dev OPERATOR_ACTIVE or OPERATOR_PAUSED for the registry's operators (depending on the global pause), else 0.
    mapping(address account => uint256) private _operatorStatus;
    mapping(uint256 merchantId => Merchant) private _merchants;
    mapping(uint256 planId => Plan) private _plans;
    /// @dev Packed {Subscription} words, at {subscriptionKey}.
    mapping(bytes32 key => uint256 word) private _subscriptions;

    /// @notice A merchant was registered.
    /// @param merchantId The id assigned by the contract.
    /// @param admin The account administering it (the registering account).
    /// @param beneficiary Where its charges are paid.
    event MerchantRegistered(uint256 indexed merchantId, address indexed admin, address beneficiary);

    /// @notice A merchant's beneficiary changed.
    /// @param merchantId The merchant.
    /// @param previousBeneficiary The beneficiary before.
    /// @param newBeneficiary The beneficiary after.
    event BeneficiaryChanged(uint256 indexed merchantId, address previousBeneficiary, address newBeneficiary);

    /// @notice A merchant admin started handing over the merchant.
    /// @param merchantId The merchant.
    /// @param admin The current admin.
    /// @param pendingAdmin The account that must accept.
    event MerchantAdminTransferStarted(uint256 indexed merchantId, address indexed admin, address indexed pendingAdmin);

    /// @notice A merchant's admin changed.
    /// @param merchantId The merchant.
    /// @param previousAdmin The admin before.
    /// @param newAdmin The admin after.
    event MerchantAdminTransferred(uint256 indexed merchantId, address indexed previousAdmin, address indexed newAdmin);

    /// @notice A merchant's billing was paused or resumed by its admin.
    /// @param merchantId The merchant.
    /// @param paused True when paused.
    event MerchantPauseSet(uint256 indexed merchantId, bool paused);

    /// @notice A plan was created.
    /// @param planId The id assigned by the contract.
    /// @param merchantId The merchant offering it.
    /// @param token The ERC-20 it bills in.
    /// @param amount The amount per period.
    /// @param period The period in seconds.
    /// @param trialPeriod Seconds before the first charge (0: first period charged at subscribe).
    /// @param maxCharges Number of periods billed in total (0: unlimited).
    /// @param maxBacklog Most periods one catch-up may collect; older ones are forgiven.
    event PlanCreated(
        uint256 indexed planId,
        uint256 indexed merchantId,
        address indexed token,
        uint256 amount,
        uint256 period,
        uint256 trialPeriod,
        uint256 maxCharges,
        uint256 maxBacklog
    );

    /// @notice A plan was opened or closed to new subscriptions.
    /// @param planId The plan.
    /// @param active True when open.
    event PlanActiveSet(uint256 indexed planId, bool active);

    /// @notice A customer subscribed. With `customer`, `token` and `amount` it gives the subscription's ref.
    /// @param subscriptionId The id assigned by the contract.
    /// @param merchantId The merchant billed for.
    /// @param customer The paying account.
    /// @param planId The plan whose terms were copied.
    /// @param token The ERC-20 billed in.
    /// @param amount The amount per period.
    /// @param period The period in seconds.
    /// @param firstChargeAt When period 0 is due.
    /// @param maxCharges Number of periods billed in total (0: unlimited).
    /// @param maxBacklog Most periods one catch-up may collect.
    event Subscribed(
        uint256 indexed subscriptionId,
        uint256 indexed merchantId,
        address indexed customer,
        uint256 planId,
        address token,
        uint256 amount,
        uint256 period,
        uint256 firstChargeAt,
        uint256 maxCharges,
        uint256 maxBacklog
    );

    /// @notice A period was paid to the merchant's beneficiary.
    /// @dev The period paid is the one due at `nextChargeAt - period`; a jump of more than one period since the
    ///      previous charge means older periods were forgiven (see `maxBacklog`).
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param amount The amount paid.
    /// @param nextChargeAt When the next period is due.
    event Charged(uint256 indexed subscriptionId, uint256 indexed merchantId, uint256 amount, uint256 nextChargeAt);

    /// @notice A due charge could not be collected (balance, allowance or token failure); the subscription is past due.
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param customer The payer.
    /// @param dueAt When the unpaid period fell due.
    event ChargeFailed(
        uint256 indexed subscriptionId,
        uint256 indexed merchantId,
        address indexed customer,
        uint256 dueAt
    );

    /// @notice {chargeMany} passed over an item.
    /// @param subscriptionId The subscription id as given.
    /// @param reason Why it was not charged.
    event ChargeSkipped(uint256 indexed subscriptionId, SkipReason reason);

    /// @notice A subscription was cancelled.
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param customer The payer.
    /// @param cancelledBy The customer or the merchant admin.
    event SubscriptionCancelled(
        uint256 indexed subscriptionId,
        uint256 indexed merchantId,
        address indexed customer,
        address cancelledBy
    );

    /// @notice A past-due subscription exceeded the grace period and ended unpaid.
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param customer The payer.
    event SubscriptionLapsed(uint256 indexed subscriptionId, uint256 indexed merchantId, address indexed customer);

    /// @notice The last period allowed by `maxCharges` was paid.
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param customer The payer.
    event SubscriptionCompleted(uint256 indexed subscriptionId, uint256 indexed merchantId, address indexed customer);

    /// @notice The owner paused all billing.
    /// @param account The owner.
    event Paused(address account);

    /// @notice The owner resumed billing.
    /// @param account The owner.
    event Unpaused(address account);

    /// @notice No merchant has id `merchantId`.
    /// @param merchantId The id given.
    error BillingUnknownMerchant(uint256 merchantId);

    /// @notice No plan has id `planId`.
    /// @param planId The id given.
    error BillingUnknownPlan(uint256 planId);

    /// @notice The ref addresses no subscription (unknown id, or a wrong customer, token or amount).
    /// @param subscriptionId The id given.
    error BillingUnknownSubscription(uint256 subscriptionId);

    /// @notice `caller` is not the admin of merchant `merchantId`.
    /// @param merchantId The merchant.
    /// @param caller The account that called.
    error BillingNotMerchantAdmin(uint256 merchantId, address caller);

    /// @notice `caller` is not the pending admin of merchant `merchantId`.
    /// @param merchantId The merchant.
    /// @param caller The account that called.
    error BillingNotPendingAdmin(uint256 merchantId, address caller);

    /// @notice `caller` is neither a registered operator, nor the subscription's merchant admin, nor its customer.
    /// @param subscriptionId The subscription.
    /// @param caller The account that called.
    error BillingUnauthorizedCharger(uint256 subscriptionId, address caller);

    /// @notice `caller` is not an operator and may charge none of the items of a {chargeMany}.
    /// @param caller The account that called.
    error BillingNotAnOperator(address caller);

    /// @notice `caller` is neither the customer nor the merchant admin of the subscription.
    /// @param subscriptionId The subscription.
    /// @param caller The account that called.
    error BillingUnauthorizedCanceller(uint256 subscriptionId, address caller);

    /// @notice The subscription is not active (cancelled, lapsed or completed).
    /// @param subscriptionId The subscription.
    /// @param status Its status.
    error BillingSubscriptionNotActive(uint256 subscriptionId, Status status);

    /// @notice The subscription's next period is not due yet.
    /// @param subscriptionId The subscription.
    /// @param nextChargeAt When it becomes due.
    error BillingNotDue(uint256 subscriptionId, uint256 nextChargeAt);

    /// @notice Merchant `merchantId` has paused its billing.
    /// @param merchantId The merchant.
    error BillingMerchantPaused(uint256 merchantId);

    /// @notice Merchant `merchantId` is already in the pause state asked for.
    /// @param merchantId The merchant.
    /// @param paused The state asked for.
    error BillingMerchantPauseUnchanged(uint256 merchantId, bool paused);

    /// @notice Billing is globally paused by the owner.
    error BillingPaused();

    /// @notice Billing is not globally paused.
    error BillingNotPaused();

    /// @notice Plan `planId` takes no new subscriptions.
    /// @param planId The plan.
    error BillingPlanInactive(uint256 planId);

    /// @notice An address argument was zero.
    error BillingZeroAddress();

    /// @notice `beneficiary` cannot receive charges (zero, or this contract, which would lock the tokens for good).
    /// @param beneficiary The address given.
    error BillingInvalidBeneficiary(address beneficiary);

    /// @notice `token` has no code, so it cannot be an ERC-20.
    /// @param token The address given.
    error BillingInvalidToken(address token);

    /// @notice The amount is zero or does not fit in 96 bits.
    /// @param amount The amount given.
    error BillingInvalidAmount(uint256 amount);

    /// @notice The period is shorter than {MIN_PERIOD}.
    /// @param period The period given.
    error BillingInvalidPeriod(uint256 period);

    /// @notice The backlog is zero: a subscription must be able to collect at least the current period.
    /// @param maxBacklog The value given.
    error BillingInvalidBacklog(uint256 maxBacklog);

    /// @notice The grace period is outside [{MIN_GRACE_PERIOD}, {MAX_GRACE_PERIOD}].
    /// @param gracePeriod The value given.
    error BillingInvalidGracePeriod(uint256 gracePeriod);

    /// @notice The permit failed and the existing allowance does not cover the first charge.
    /// @param planId The plan subscribed to.
    error BillingPermitFailed(uint256 planId);

    /// @notice A token call failed for lack of gas that the caller's gas limit withheld (the 1/64 rule): retry with
    ///         more gas. Reverting keeps a funded customer from being marked past due by a starved call.
    error BillingTokenCallStarved();

    /// @notice Only the registry may update the operator set.
    /// @param caller The account that called.
    error BillingNotRegistry(address caller);

    /// @notice Ownership cannot be renounced: pausing would be impossible afterwards.
    error BillingRenounceDisabled();

    /// @param initialOwner The Safe that owns this contract (global pause) and the registry (operators).
    /// @param initialOperators The operators allowed to charge from the start.
    /// @param initialGuardian The account that may revoke operators at once (zero for none).
    /// @param gracePeriod_ Unpaused seconds a subscription may stay past due before it lapses.
    constructor(
        address initialOwner,
        address[] memory initialOperators,
        address initialGuardian,
        uint256 gracePeriod_
    ) Ownable(initialOwner) {
        if (gracePeriod_ < MIN_GRACE_PERIOD || gracePeriod_ > MAX_GRACE_PERIOD) {
            revert BillingInvalidGracePeriod(gracePeriod_);
        }
        gracePeriod = gracePeriod_;
        OperatorRegistry operatorRegistry = new OperatorRegistry(initialOwner, initialGuardian, initialOperators);
        registry = operatorRegistry;
        address[] memory accepted = operatorRegistry.operators();
        for (uint256 i = 0; i < accepted.length; ++i) {
            _operatorStatus[accepted[i]] = OPERATOR_ACTIVE;
        }
    }

    modifier onlyMerchantAdmin(uint256 merchantId) {
        _checkMerchantAdmin(merchantId);
        _;
    }

    // ---------------------------------------------------------------- merchants

    /// @notice Registers a merchant administered by the caller.
    /// @param beneficiary Where the merchant's charges are paid.
    /// @return merchantId The id assigned by the contract.
    function registerMerchant(address beneficiary) external returns (uint256 merchantId) {
        _checkBeneficiary(beneficiary);
        merchantId = ++merchantCount;
        Merchant storage merchant = _merchants[merchantId];
        merchant.billing.beneficiary = beneficiary;
        merchant.admin = msg.sender;
        emit MerchantRegistered(merchantId, msg.sender, beneficiary);
    }

    /// @notice Changes where the merchant's future charges are paid.
    /// @dev Only the merchant admin.
    /// @param merchantId The merchant.
    /// @param newBeneficiary The new beneficiary.
    function setBeneficiary(uint256 merchantId, address newBeneficiary) external onlyMerchantAdmin(merchantId) {
        _checkBeneficiary(newBeneficiary);
        MerchantBilling storage billing = _merchants[merchantId].billing;
        emit BeneficiaryChanged(merchantId, billing.beneficiary, newBeneficiary);
        billing.beneficiary = newBeneficiary;
    }

    /// @notice Starts handing the merchant over to `newAdmin`, who must accept.
    /// @dev Only the merchant admin. Zero cancels a pending handover.
    /// @param merchantId The merchant.
    /// @param newAdmin The proposed admin.
    function transferMerchantAdmin(uint256 merchantId, address newAdmin) external onlyMerchantAdmin(merchantId) {
        _merchants[merchantId].pendingAdmin = newAdmin;
        emit MerchantAdminTransferStarted(merchantId, msg.sender, newAdmin);
    }

    /// @notice Completes a handover started with {transferMerchantAdmin}.
    /// @dev Only the pending admin.
    /// @param merchantId The merchant.
    function acceptMerchantAdmin(uint256 merchantId) external {
        Merchant storage merchant = _merchants[merchantId];
        if (msg.sender != merchant.pendingAdmin) {
            revert BillingNotPendingAdmin(merchantId, msg.sender);
        }
        emit MerchantAdminTransferred(merchantId, merchant.admin, msg.sender);
        merchant.admin = msg.sender;
        delete merchant.pendingAdmin;
    }

    /// @notice Pauses or resumes all charges and new subscriptions of a merchant.
    /// @dev Only the merchant admin: operators can neither pause nor unpause. Paused time does not count towards the
    ///      grace period of the merchant's past-due subscriptions.
    /// @param merchantId The merchant.
    /// @param pauseBilling True to pause, false to resume.
    function setMerchantPaused(uint256 merchantId, bool pauseBilling) external onlyMerchantAdmin(merchantId) {
        MerchantBilling storage billing = _merchants[merchantId].billing;
        if (billing.paused == pauseBilling) revert BillingMerchantPauseUnchanged(merchantId, pauseBilling);
        uint256 clock = _globalClock(_pause);
        if (pauseBilling) {
            billing.pausedAtClock = uint40(clock);
        } else {
            billing.pausedSeconds += uint40(clock - billing.pausedAtClock);
            billing.pausedAtClock = 0;
        }
        billing.paused = pauseBilling;
        emit MerchantPauseSet(merchantId, pauseBilling);
    }

    // -------------------------------------------------------------------- plans

    /// @notice Creates a plan. Its terms never change; subscriptions copy them.
    /// @dev Only the merchant admin.
    /// @param merchantId The merchant offering the plan.
    /// @param token The ERC-20 to bill in (see the contract notes on fee-on-transfer tokens).
    /// @param amount The amount per period; at most 2^96 - 1.
    /// @param period The period in seconds; at least {MIN_PERIOD}.
    /// @param trialPeriod Seconds before the first charge; 0 charges the first period at subscribe.
    /// @param maxCharges Number of periods billed in total; 0 for unlimited.
    /// @param maxBacklog Most periods one late charge may catch up (at least 1; 1 forgives all but the current one).
    /// @return planId The id assigned by the contract.
    function createPlan(
        uint256 merchantId,
        address token,
        uint256 amount,
        uint32 period,
        uint32 trialPeriod,
        uint32 maxCharges,
        uint8 maxBacklog
    ) external onlyMerchantAdmin(merchantId) returns (uint256 planId) {
        if (token.code.length == 0) revert BillingInvalidToken(token);
        if (amount == 0 || amount > type(uint96).max) revert BillingInvalidAmount(amount);
        if (period < MIN_PERIOD) revert BillingInvalidPeriod(period);
        if (maxBacklog == 0) revert BillingInvalidBacklog(maxBacklog);
        planId = ++planCount;
        _plans[planId] = Plan({
            token: token,
            merchantId: uint32(merchantId),
            period: period,
            maxBacklog: maxBacklog,
            active: true,
            amount: uint96(amount),
            trialPeriod: trialPeriod,
            maxCharges: maxCharges
        });
        emit PlanCreated(planId, merchantId, token, amount, period, trialPeriod, maxCharges, maxBacklog);
    }

    /// @notice Opens or closes a plan to new subscriptions; existing subscriptions are not affected.
    /// @dev Only the admin of the plan's merchant.
    /// @param planId The plan.
    /// @param active True to open.
    function setPlanActive(uint256 planId, bool active) external {
        uint256 merchantId = _plans[planId].merchantId;
        if (merchantId == 0) revert BillingUnknownPlan(planId);
        _checkMerchantAdmin(merchantId);
        _plans[planId].active = active;
        emit PlanActiveSet(planId, active);
    }

    // ------------------------------------------------------------ subscriptions

    /// @notice Subscribes the caller to `planId`. Without a trial the first period is charged now.
    /// @dev The caller must have approved this contract for the first charge (or more, for later ones).
    /// @param planId The plan to subscribe to.
    /// @return subscriptionId The id assigned by the contract.
    function subscribe(uint256 planId) external nonReentrant returns (uint256 subscriptionId) {
        return _subscribe(planId);
    }

    /// @notice Approves this contract with an EIP-2612 permit and subscribes, in one transaction.
    /// @dev A permit that fails (for example because someone front-ran it) is tolerated when the allowance in place
    ///      covers the first charge, so a front-runner cannot block the subscription, even after spending part of
    ///      the permitted allowance on another of the customer's subscriptions.
    /// @param planId The plan to subscribe to.
    /// @param value The allowance the permit grants (cover as many periods as you want to pre-authorize).
    /// @param deadline The permit's deadline.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    /// @return subscriptionId The id assigned by the contract.
    function subscribeWithPermit(
        uint256 planId,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 subscriptionId) {
        Plan storage plan = _plans[planId];
        address token = plan.token;
        if (token == address(0)) revert BillingUnknownPlan(planId);
        if (
            !_permit(token, value, deadline, v, r, s) &&
            IERC20(token).allowance(msg.sender, address(this)) < plan.amount
        ) {
            revert BillingPermitFailed(planId);
        }
        return _subscribe(planId);
    }

    /// @notice Cancels a subscription for good. No further charge is possible.
    /// @dev Only the customer or the merchant admin; operators cannot cancel. Works while paused, and from inside a
    ///      charge's token call (a failing token cannot undo it).
    /// @param ref The subscription.
    function cancel(SubscriptionRef calldata ref) external {
        bytes32 key = subscriptionKey(ref);
        Subscription memory sub = _unpack(_subscriptions[key]);
        Status status = sub.status;
        if (status == Status.None) revert BillingUnknownSubscription(ref.id);
        uint256 merchantId = sub.merchantId;
        if (msg.sender != ref.customer && msg.sender != _merchants[merchantId].admin) {
            revert BillingUnauthorizedCanceller(ref.id, msg.sender);
        }
        if (status != Status.Active && status != Status.PastDue) {
            revert BillingSubscriptionNotActive(ref.id, status);
        }
        sub.status = Status.Cancelled;
        _subscriptions[key] = _pack(sub);
        emit SubscriptionCancelled(ref.id, merchantId, ref.customer, msg.sender);
    }

    // ------------------------------------------------------------------ charges

    /// @notice Charges the due period of one subscription.
    /// @dev Registered operators, the merchant admin and the customer (who can so settle a past-due subscription).
    ///      Reverts when the charge is not allowed (unknown, unauthorized, not active, merchant or globally paused,
    ///      not due). When the token transfer fails the subscription goes past due and the call returns false; when
    ///      it has been past due for longer than the grace period it lapses instead.
    /// @param ref The subscription.
    /// @return charged True when a period was paid.
    function charge(SubscriptionRef calldata ref) external nonReentrant returns (bool charged) {
        return _charge(ref, _callerIsOperator(), true) == Outcome.Charged;
    }

    /// @notice Charges many subscriptions; an item that cannot be charged never reverts the batch.
    /// @dev Registered operators (any subscription); merchant admins and customers (their own items; the others are
    ///      skipped). Each item ends in exactly one event: {Charged}, {ChargeFailed}, {SubscriptionLapsed} or
    ///      {ChargeSkipped}. A repeated item is charged again only if another period is due by then, so a duplicate
    ///      can never pay a period twice. Reverts when billing is paused, when the caller is not an operator and may
    ///      charge none of the items, and when a token call was starved of gas.
    /// @param refs The subscriptions.
    /// @return charged How many periods were paid.
    function chargeMany(SubscriptionRef[] calldata refs) external nonReentrant returns (uint256 charged) {
        bool callerIsOperator = _callerIsOperator();
        bool authorized = callerIsOperator;
        for (uint256 i = 0; i < refs.length; ++i) {
            Outcome outcome = _charge(refs[i], callerIsOperator, false);
            if (outcome == Outcome.Charged) {
                unchecked {
                    ++charged;
                }
            }
            if (outcome != Outcome.Unauthorized) authorized = true;
        }
        if (!authorized && refs.length != 0) revert BillingNotAnOperator(msg.sender);
    }

    // -------------------------------------------------------------------- pause

    /// @notice Stops all charges and subscriptions, across every merchant. Grace periods stop running.
    /// @dev Only the owner (the Safe). Cancellations stay possible.
    function pause() external onlyOwner {
        GlobalPause memory state = _pause;
        if (state.paused) revert BillingPaused();
        _pause = GlobalPause({paused: true, pausedAt: uint40(block.timestamp), pausedSeconds: state.pausedSeconds});
        _setOperatorsStatus(OPERATOR_PAUSED);
        emit Paused(msg.sender);
    }

    /// @notice Resumes charges and subscriptions after {pause}.
    /// @dev Only the owner (the Safe).
    function unpause() external onlyOwner {
        GlobalPause memory state = _pause;
        if (!state.paused) revert BillingNotPaused();
        _pause = GlobalPause({
            paused: false,
            pausedAt: 0,
            pausedSeconds: uint40(state.pausedSeconds + block.timestamp - state.pausedAt)
        });
        _setOperatorsStatus(OPERATOR_ACTIVE);
        emit Unpaused(msg.sender);
    }

    /// @inheritdoc IOperatorSink
    function syncOperator(address account, bool enabled) external {
        if (msg.sender != address(registry)) revert BillingNotRegistry(msg.sender);
        uint256 status = OPERATOR_NONE;
        if (enabled) status = _pause.paused ? OPERATOR_PAUSED : OPERATOR_ACTIVE;
        _operatorStatus[account] = status;
    }

    /// @notice Disabled: see {BillingRenounceDisabled}.
    function renounceOwnership() public view override onlyOwner {
        revert BillingRenounceDisabled();
    }

    // -------------------------------------------------------------------- views

    /// @notice Whether billing is globally paused.
    /// @return True while paused.
    function paused() external view returns (bool) {
        return _pause.paused;
    }

    /// @notice Whether `account` is a registered operator (this contract's copy of the registry's set).
    /// @param account The account.
    /// @return True if `account` may charge any subscription while billing is not paused.
    function isOperator(address account) external view returns (bool) {
        return _operatorStatus[account] != OPERATOR_NONE;
    }

    /// @notice A merchant's clock for grace periods: seconds elapsed while neither billing nor the merchant was paused,
    ///         plus a constant. Only differences between two readings matter.
    /// @param merchantId The merchant.
    /// @return The clock reading now.
    function billingClock(uint256 merchantId) external view returns (uint256) {
        return _merchantClock(_merchants[merchantId].billing, _pause);
    }

    /// @notice A merchant's record.
    /// @param merchantId The merchant.
    /// @return The merchant (zero admin if unknown).
    function getMerchant(uint256 merchantId) external view returns (Merchant memory) {
        return _merchants[merchantId];
    }

    /// @notice A plan's terms.
    /// @param planId The plan.
    /// @return The plan (zero token if unknown).
    function getPlan(uint256 planId) external view returns (Plan memory) {
        return _plans[planId];
    }

    /// @notice A subscription's storage word.
    /// @param ref The subscription.
    /// @return The subscription (status None if the ref addresses none).
    function getSubscription(SubscriptionRef calldata ref) external view returns (Subscription memory) {
        return _unpack(_subscriptions[subscriptionKey(ref)]);
    }

    /// @notice Unpaused seconds left before a past-due subscription lapses at its next charge attempt.
    /// @param ref The subscription.
    /// @return Seconds left (0 when not past due, or when the grace period is over).
    function graceRemaining(SubscriptionRef calldata ref) external view returns (uint256) {
        Subscription memory sub = _unpack(_subscriptions[subscriptionKey(ref)]);
        if (sub.status != Status.PastDue) return 0;
        uint256 elapsed = _merchantClock(_merchants[sub.merchantId].billing, _pause) - sub.pastDueClock;
        return elapsed >= gracePeriod ? 0 : gracePeriod - elapsed;
    }

    /// @notice Whether a charge now would attempt to collect a period (ignoring who calls and the customer's balance).
    /// @param ref The subscription.
    /// @return True when active, or past due within the grace period; due; and neither globally nor merchant paused.
    function isDue(SubscriptionRef calldata ref) external view returns (bool) {
        return _isDue(ref);
    }

    /// @notice {isDue} for many subscriptions in one call (a keeper checks a whole batch with one eth_call).
    /// @param refs The subscriptions.
    /// @return due `due[i]` is `isDue(refs[i])`.
    function areDue(SubscriptionRef[] calldata refs) external view returns (bool[] memory due) {
        due = new bool[](refs.length);
        for (uint256 i = 0; i < refs.length; ++i) due[i] = _isDue(refs[i]);
    }

    /// @notice Where a subscription's storage word lives.
    /// @param ref The subscription.
    /// @return key The key of `ref` in the subscriptions mapping.
    function subscriptionKey(SubscriptionRef calldata ref) public pure returns (bytes32 key) {
        // `keccak256(abi.encode(ref))`, hashed straight from calldata: a static struct's ABI encoding is its calldata.
        // A ref whose address words carry dirty upper bits hashes elsewhere, so it addresses no subscription.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, ref, 0x80)
            key := keccak256(ptr, 0x80)
        }
    }

    // ---------------------------------------------------------------- internals

    function _isDue(SubscriptionRef calldata ref) private view returns (bool) {
        Subscription memory sub = _unpack(_subscriptions[subscriptionKey(ref)]);
        GlobalPause memory pauseState = _pause;
        if (pauseState.paused || block.timestamp < sub.nextChargeAt) return false;
        MerchantBilling memory merchant = _merchants[sub.merchantId].billing;
        if (merchant.paused) return false;
        if (sub.status == Status.Active) return true;
        return
            sub.status == Status.PastDue &&
            _merchantClock(merchant, pauseState) < uint256(sub.pastDueClock) + gracePeriod;
    }

    function _subscribe(uint256 planId) private returns (uint256 subscriptionId) {
        Plan memory plan = _plans[planId];
        if (plan.token == address(0)) revert BillingUnknownPlan(planId);
        if (!plan.active) revert BillingPlanInactive(planId);
        if (_pause.paused) revert BillingPaused();
        MerchantBilling memory merchant = _merchants[plan.merchantId].billing;
        if (merchant.paused) revert BillingMerchantPaused(plan.merchantId);

        subscriptionId = ++subscriptionCount;
        uint256 firstChargeAt = block.timestamp + plan.trialPeriod;
        // Without a trial the first period is paid here, so the schedule starts one period later.
        bool paidNow = plan.trialPeriod == 0;
        uint256 next = paidNow ? firstChargeAt + plan.period : firstChargeAt;
        bool completes = paidNow && plan.maxCharges == 1;
        bytes32 key = keccak256(abi.encode(subscriptionId, msg.sender, uint256(plan.amount), plan.token));
        _subscriptions[key] = _pack(
            Subscription({
                nextChargeAt: uint40(next),
                status: completes ? Status.Completed : Status.Active,
                merchantId: plan.merchantId,
                period: plan.period,
                chargeCount: paidNow ? 1 : 0,
                maxCharges: plan.maxCharges,
                maxBacklog: plan.maxBacklog,
                pastDueClock: 0,
                planId: uint32(planId)
            })
        );
        emit Subscribed(
            subscriptionId,
            plan.merchantId,
            msg.sender,
            planId,
            plan.token,
            plan.amount,
            plan.period,
            firstChargeAt,
            plan.maxCharges,
            plan.maxBacklog
        );
        if (!paidNow) return subscriptionId;
        IERC20(plan.token).safeTransferFrom(msg.sender, merchant.beneficiary, plan.amount);
        emit Charged(subscriptionId, plan.merchantId, plan.amount, next);
        if (completes) emit SubscriptionCompleted(subscriptionId, plan.merchantId, msg.sender);
    }

    /// @dev One charge attempt. `strict` reverts on a rule violation ({charge}); otherwise it emits {ChargeSkipped}
    ///      ({chargeMany}). Token failures and lapses never revert, so their state change sticks.
    function _charge(SubscriptionRef calldata ref, bool callerIsOperator, bool strict) private returns (Outcome) {
        uint256 id = ref.id;
        bytes32 key = subscriptionKey(ref);
        uint256 word = _subscriptions[key];
        uint256 status = uint8(word >> _SUB_STATUS);

        if (status == uint256(Status.None)) {
            if (strict) revert BillingUnknownSubscription(id);
            _skip(id, SkipReason.UnknownSubscription);
            // Nobody but an operator is entitled to it: a batch of refs that exist nowhere is no more an operator's
            // work than a batch of others' subscriptions ({chargeMany} reverts BillingNotAnOperator for either).
            return callerIsOperator ? Outcome.NotCharged : Outcome.Unauthorized;
        }
        uint256 merchantId = uint32(word >> _SUB_MERCHANT_ID);
        Merchant storage merchant = _merchants[merchantId];
        if (!callerIsOperator && msg.sender != ref.customer && msg.sender != merchant.admin) {
            if (strict) revert BillingUnauthorizedCharger(id, msg.sender);
            emit ChargeSkipped(id, SkipReason.Unauthorized);
            return Outcome.Unauthorized;
        }
        if (status != _ACTIVE && status != _PAST_DUE) {
            if (strict) revert BillingSubscriptionNotActive(id, Status(status));
            return _skip(id, SkipReason.NotActive);
        }
        MerchantBilling storage billing = merchant.billing;
        // Both in the merchant's first word: read together, they cost one storage read.
        (address beneficiary, bool merchantPaused) = (billing.beneficiary, billing.paused);
        if (merchantPaused) {
            if (strict) revert BillingMerchantPaused(merchantId);
            return _skip(id, SkipReason.MerchantPaused);
        }
        uint256 dueAt = uint40(word >> _SUB_NEXT_CHARGE_AT);
        if (block.timestamp < dueAt) {
            if (strict) revert BillingNotDue(id, dueAt);
            return _skip(id, SkipReason.NotDue);
        }
        if (
            status == _PAST_DUE &&
            _merchantClock(billing, _pause) >= uint256(uint40(word >> _SUB_PAST_DUE_CLOCK)) + gracePeriod
        ) {
            _subscriptions[key] = _withStatus(word, Status.Lapsed);
            emit SubscriptionLapsed(id, merchantId, ref.customer);
            return Outcome.NotCharged;
        }
        return _collect(key, word, dueAt, ref, beneficiary, billing);
    }

    /// @dev Pays one period: older periods beyond the backlog forgiven, effects written in one word, then the bounded
    ///      token call; if the token refuses, the subscription goes past due on the forgiven schedule.
    function _collect(
        bytes32 key,
        uint256 word,
        uint256 dueAt,
        SubscriptionRef calldata ref,
        address beneficiary,
        MerchantBilling storage billing
    ) private returns (Outcome) {
        uint256 next;
        uint256 paid;
        bool completes;
        // Bounded: times fit in 40 bits, periods in 32, counts in 32 and the backlog in 8.
        unchecked {
            uint256 period = uint32(word >> _SUB_PERIOD);
            uint256 maxBacklog = uint8(word >> _SUB_MAX_BACKLOG);
            if (block.timestamp >= dueAt + period * maxBacklog) {
                dueAt += ((block.timestamp - dueAt) / period + 1 - maxBacklog) * period;
            }
            next = dueAt + period;
            uint256 count = uint256(uint32(word >> _SUB_CHARGE_COUNT)) + 1;
            uint256 maxCharges = uint32(word >> _SUB_MAX_CHARGES);
            // A schedule past the 40-bit clock ends with this period rather than revert a batch.
            completes = (maxCharges != 0 && count >= maxCharges) || next > type(uint40).max;
            paid =
                completes
                    ? _withSchedule(word, dueAt, Status.Completed, count)
                    : _withSchedule(word, next, Status.Active, count);
        }
        _subscriptions[key] = paid;

        if (!_tryTransferFrom(ref.token, ref.customer, beneficiary, ref.amount)) {
            if (gasleft() < TOKEN_CALL_GAS / 63) revert BillingTokenCallStarved();
            _recordFailure(key, word, paid, dueAt, ref, billing);
            return Outcome.NotCharged;
        }
        uint256 merchantId = uint32(word >> _SUB_MERCHANT_ID);
        emit Charged(ref.id, merchantId, ref.amount, next);
        if (completes) emit SubscriptionCompleted(ref.id, merchantId, ref.customer);
        return Outcome.Charged;
    }

    /// @dev The token refused the payment: past due (the first failure starts the grace period), with the unpaid
    ///      period due at `dueAt` and the count as `before`. A word the token call changed (the customer or merchant
    ///      re-entering {cancel}) is left as the token call left it.
    function _recordFailure(
        bytes32 key,
        uint256 before,
        uint256 paid,
        uint256 dueAt,
        SubscriptionRef calldata ref,
        MerchantBilling storage billing
    ) private {
        if (_subscriptions[key] == paid) {
            uint256 since =
                uint8(before >> _SUB_STATUS) == _PAST_DUE
                    ? uint40(before >> _SUB_PAST_DUE_CLOCK)
                    : _merchantClock(billing, _pause);
            uint256 word = _withSchedule(before, dueAt, Status.PastDue, uint32(before >> _SUB_CHARGE_COUNT));
            word &= ~(uint256(type(uint40).max) << _SUB_PAST_DUE_CLOCK);
            _subscriptions[key] = word | (since << _SUB_PAST_DUE_CLOCK);
        }
        emit ChargeFailed(ref.id, uint32(before >> _SUB_MERCHANT_ID), ref.customer, dueAt);
    }

    function _withSchedule(
        uint256 word,
        uint256 nextChargeAt,
        Status status,
        uint256 chargeCount
    ) private pure returns (uint256) {
        return
            (word & ~_SUB_SCHEDULE_MASK) |
            (nextChargeAt << _SUB_NEXT_CHARGE_AT) |
            (uint256(status) << _SUB_STATUS) |
            (chargeCount << _SUB_CHARGE_COUNT);
    }

    function _withStatus(uint256 word, Status status) private pure returns (uint256) {
        return (word & ~(uint256(type(uint8).max) << _SUB_STATUS)) | (uint256(status) << _SUB_STATUS);
    }

    function _pack(Subscription memory sub) private pure returns (uint256) {
        return
            (uint256(sub.nextChargeAt) << _SUB_NEXT_CHARGE_AT) |
            (uint256(sub.status) << _SUB_STATUS) |
            (uint256(sub.merchantId) << _SUB_MERCHANT_ID) |
            (uint256(sub.period) << _SUB_PERIOD) |
            (uint256(sub.chargeCount) << _SUB_CHARGE_COUNT) |
            (uint256(sub.maxCharges) << _SUB_MAX_CHARGES) |
            (uint256(sub.maxBacklog) << _SUB_MAX_BACKLOG) |
            (uint256(sub.pastDueClock) << _SUB_PAST_DUE_CLOCK) |
            (uint256(sub.planId) << _SUB_PLAN_ID);
    }

    function _unpack(uint256 word) private pure returns (Subscription memory) {
        return
            Subscription({
                nextChargeAt: uint40(word >> _SUB_NEXT_CHARGE_AT),
                status: Status(uint8(word >> _SUB_STATUS)),
                merchantId: uint32(word >> _SUB_MERCHANT_ID),
                period: uint32(word >> _SUB_PERIOD),
                chargeCount: uint32(word >> _SUB_CHARGE_COUNT),
                maxCharges: uint32(word >> _SUB_MAX_CHARGES),
                maxBacklog: uint8(word >> _SUB_MAX_BACKLOG),
                pastDueClock: uint40(word >> _SUB_PAST_DUE_CLOCK),
                planId: uint32(word >> _SUB_PLAN_ID)
            });
    }

    /// @dev Whether the caller is an operator; reverts while billing is paused (an operator's status carries the pause,
    ///      so an operator's charge reads one word to know both).
    function _callerIsOperator() private view returns (bool) {
        uint256 status = _operatorStatus[msg.sender];
        if (status == OPERATOR_ACTIVE) return true;
        if (status == OPERATOR_PAUSED || _pause.paused) revert BillingPaused();
        return false;
    }

    function _setOperatorsStatus(uint256 status) private {
        address[] memory accounts = registry.operators();
        for (uint256 i = 0; i < accounts.length; ++i) {
            _operatorStatus[accounts[i]] = status;
        }
    }

    /// @dev `token.transferFrom(from, to, value)` with at most {TOKEN_CALL_GAS} gas and SafeERC20's rules (a token
    ///      that returns nothing succeeds when it does not revert and has code); at most 32 bytes of its answer are
    ///      copied, so neither a gas bomb nor a return-data bomb reaches the caller.
    function _tryTransferFrom(address token, address from, address to, uint256 value) private returns (bool success) {
        bytes4 selector = IERC20.transferFrom.selector;
        assembly ("memory-safe") {
            let fmp := mload(0x40)
            mstore(0x00, selector)
            mstore(0x04, and(from, shr(96, not(0))))
            mstore(0x24, and(to, shr(96, not(0))))
            mstore(0x44, value)
            success := call(TOKEN_CALL_GAS, token, 0, 0x00, 0x64, 0x00, 0x20)
            if iszero(and(success, eq(mload(0x00), 1))) {
                success := and(success, and(iszero(returndatasize()), gt(extcodesize(token), 0)))
            }
            mstore(0x40, fmp)
            mstore(0x60, 0)
        }
    }

    /// @dev Tries the EIP-2612 permit; false when it reverts (expired, bad signature, already used, not supported).
    function _permit(
        address token,
        uint256 value,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) private returns (bool) {
        try IERC20Permit(token).permit(msg.sender, address(this), value, deadline, v, r, s) {
            return true;
        } catch {
            return false;
        }
    }

    function _skip(uint256 subscriptionId, SkipReason reason) private returns (Outcome) {
        emit ChargeSkipped(subscriptionId, reason);
        return Outcome.NotCharged;
    }

    function _checkMerchantAdmin(uint256 merchantId) private view {
        address admin = _merchants[merchantId].admin;
        if (admin == address(0)) revert BillingUnknownMerchant(merchantId);
        if (msg.sender != admin) revert BillingNotMerchantAdmin(merchantId, msg.sender);
    }

    function _checkBeneficiary(address beneficiary) private view {
        if (beneficiary == address(0) || beneficiary == address(this)) revert BillingInvalidBeneficiary(beneficiary);
    }

    /// @dev Seconds elapsed while billing was not globally paused, plus a constant.
    function _globalClock(GlobalPause memory pauseState) private view returns (uint256) {
        return (pauseState.paused ? pauseState.pausedAt : block.timestamp) - pauseState.pausedSeconds;
    }

    /// @dev Seconds elapsed while neither billing nor the merchant was paused, plus a constant.
    function _merchantClock(
        MerchantBilling memory merchant,
        GlobalPause memory pauseState
    ) private view returns (uint256) {
        uint256 clock = merchant.paused ? merchant.pausedAtClock : _globalClock(pauseState);
        return clock - merchant.pausedSeconds;
    }
}
