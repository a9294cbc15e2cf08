// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IOperatorRegistry} from "./interfaces/IOperatorRegistry.sol";

/// @title RecurringBilling
/// @notice Merchants publish plans; customers subscribe; registered operators (or the merchant admin) trigger the
///         charges that are due. The contract enforces every rule, so an operator key can only do what the customer
///         and merchant already agreed to: charge a due period, the agreed amount, to the merchant's beneficiary.
/// @dev Schedule: anchored. Each charge pays exactly one period and moves `nextChargeAt` forward by exactly one period,
///      so a late charge may catch up but the total ever taken is at most `amount` x periods elapsed (and `maxCharges`).
///
///      Tokens: any ERC-20, through SafeERC20, so tokens that return no bool work. Fee-on-transfer and rebasing tokens
///      are not supported for merchants: the customer is debited exactly `amount` (never more), and the beneficiary
///      receives whatever the token delivers. A merchant must not create a plan in such a token; the contract cannot
///      tell and does not pay the balance difference to check, to keep charges cheap. A token chosen for a plan is
///      trusted by that plan's merchant only: a token that reverts or returns false makes the charge fail softly;
///      a token that burns all gas can only break batches that include its own subscriptions.
///
///      Immutable: no proxy, no upgrade path. A new version is a new deployment.
contract RecurringBilling is Ownable2Step, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Lifecycle of a subscription.
    /// @dev `None` marks an id that was never assigned.
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

    /// @dev Slot 0 is all that {charge} reads of a merchant.
    struct Merchant {
        address beneficiary;
        bool paused;
        address admin;
        address pendingAdmin;
    }

    /// @notice A merchant's offer. Terms never change after creation; a plan can only be (de)activated.
    struct Plan {
        address token;
        uint32 merchantId;
        uint32 period;
        bool active;
        uint96 amount;
        uint32 trialPeriod;
        uint32 maxCharges;
    }

    /// @notice A customer's agreement: the plan's terms, copied at subscribe time so that nothing a merchant does
    ///         later can change what this customer pays, how often, or in which token.
    /// @dev Three slots, all read by a charge; only the first (the schedule) is written by a successful one.
    ///      Times are uint32 (valid until 2106). `chargeCount` is the number of periods paid, hence the index of the
    ///      next one; at one charge per {MIN_PERIOD} it cannot overflow before the uint32 times do.
    struct Subscription {
        address customer;
        uint32 nextChargeAt;
        uint32 chargeCount;
        Status status;
        address token;
        uint96 amount;
        uint32 merchantId;
        uint32 period;
        uint32 maxCharges;
        uint32 planId;
        uint32 pastDueSince;
    }

    /// @notice Shortest period a plan may have.
    uint256 public constant MIN_PERIOD = 1 minutes;

    /// @notice Registry of the operators allowed to charge.
    IOperatorRegistry public immutable registry;

    /// @notice How long a past-due subscription may stay unpaid before the next charge attempt lapses it.
    uint256 public immutable gracePeriod;

    /// @notice Number of merchants registered; merchant ids run from 1 to this.
    uint32 public merchantCount;
    /// @notice Number of plans created; plan ids run from 1 to this.
    uint32 public planCount;
    /// @notice Number of subscriptions created; subscription ids run from 1 to this.
    uint64 public subscriptionCount;

    mapping(uint256 merchantId => Merchant) private _merchants;
    mapping(uint256 planId => Plan) private _plans;
    mapping(uint256 subscriptionId => Subscription) private _subscriptions;

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
    event PlanCreated(
        uint256 indexed planId,
        uint256 indexed merchantId,
        address indexed token,
        uint256 amount,
        uint256 period,
        uint256 trialPeriod,
        uint256 maxCharges
    );

    /// @notice A plan was opened or closed to new subscriptions.
    /// @param planId The plan.
    /// @param active True when open.
    event PlanActiveSet(uint256 indexed planId, bool active);

    /// @notice A customer subscribed.
    /// @param subscriptionId The id assigned by the contract.
    /// @param merchantId The merchant billed for.
    /// @param customer The paying account.
    /// @param planId The plan whose terms were copied.
    /// @param token The ERC-20 billed in.
    /// @param amount The amount per period.
    /// @param period The period in seconds.
    /// @param firstChargeAt When period 0 is due.
    /// @param maxCharges Number of periods billed in total (0: unlimited).
    event Subscribed(
        uint256 indexed subscriptionId,
        uint256 indexed merchantId,
        address indexed customer,
        uint256 planId,
        address token,
        uint256 amount,
        uint256 period,
        uint256 firstChargeAt,
        uint256 maxCharges
    );

    /// @notice A period was paid.
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param customer The payer.
    /// @param amount The amount paid to the merchant's beneficiary.
    /// @param periodIndex The 0-based index of the period paid.
    /// @param nextChargeAt When the next period is due.
    event Charged(
        uint256 indexed subscriptionId,
        uint256 indexed merchantId,
        address indexed customer,
        uint256 amount,
        uint256 periodIndex,
        uint256 nextChargeAt
    );

    /// @notice A due charge could not be collected (balance, allowance or token failure); the subscription is past due.
    /// @param subscriptionId The subscription.
    /// @param merchantId Its merchant.
    /// @param customer The payer.
    /// @param periodIndex The 0-based index of the unpaid period.
    /// @param pastDueSince When the subscription first went past due.
    event ChargeFailed(
        uint256 indexed subscriptionId,
        uint256 indexed merchantId,
        address indexed customer,
        uint256 periodIndex,
        uint256 pastDueSince
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

    /// @notice No merchant has id `merchantId`.
    /// @param merchantId The id given.
    error BillingUnknownMerchant(uint256 merchantId);

    /// @notice No plan has id `planId`.
    /// @param planId The id given.
    error BillingUnknownPlan(uint256 planId);

    /// @notice No subscription has id `subscriptionId`.
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

    /// @notice `caller` is neither a registered operator nor the admin of the subscription's merchant.
    /// @param subscriptionId The subscription.
    /// @param caller The account that called.
    error BillingUnauthorizedCharger(uint256 subscriptionId, address caller);

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

    /// @notice Plan `planId` takes no new subscriptions.
    /// @param planId The plan.
    error BillingPlanInactive(uint256 planId);

    /// @notice An address argument was zero.
    error BillingZeroAddress();

    /// @notice `token` has no code, so it cannot be an ERC-20.
    /// @param token The address given.
    error BillingInvalidToken(address token);

    /// @notice The amount is zero or does not fit in 96 bits.
    /// @param amount The amount given.
    error BillingInvalidAmount(uint256 amount);

    /// @notice The period is shorter than {MIN_PERIOD}.
    /// @param period The period given.
    error BillingInvalidPeriod(uint256 period);

    /// @notice The permit failed and the existing allowance does not cover the first charge.
    /// @param planId The plan subscribed to.
    error BillingPermitFailed(uint256 planId);

    /// @notice Ownership cannot be renounced: pausing would be impossible afterwards.
    error BillingRenounceDisabled();

    /// @param initialOwner The Safe that may pause and unpause globally.
    /// @param operatorRegistry The registry of operators allowed to charge.
    /// @param gracePeriod_ Seconds a subscription may stay past due before it lapses.
    constructor(address initialOwner, IOperatorRegistry operatorRegistry, uint256 gracePeriod_) Ownable(initialOwner) {
        if (address(operatorRegistry) == address(0)) revert BillingZeroAddress();
        registry = operatorRegistry;
        gracePeriod = gracePeriod_;
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
        if (beneficiary == address(0)) revert BillingZeroAddress();
        merchantId = ++merchantCount;
        Merchant storage merchant = _merchants[merchantId];
        merchant.beneficiary = beneficiary;
        merchant.admin = msg.sender;
        emit MerchantRegistered(merchantId, msg.sender, beneficiary);
    }

    /// @notice Changes where the merchant's future charges are paid.
    /// @dev Only the merchant admin.
    /// @param merchantId The merchant.
    /// @param newBeneficiary The new beneficiary.
    function setBeneficiary(uint256 merchantId, address newBeneficiary) external onlyMerchantAdmin(merchantId) {
        if (newBeneficiary == address(0)) revert BillingZeroAddress();
        Merchant storage merchant = _merchants[merchantId];
        emit BeneficiaryChanged(merchantId, merchant.beneficiary, newBeneficiary);
        merchant.beneficiary = newBeneficiary;
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
    /// @dev Only the merchant admin: operators can neither pause nor unpause.
    /// @param merchantId The merchant.
    /// @param paused True to pause.
    function setMerchantPaused(uint256 merchantId, bool paused) external onlyMerchantAdmin(merchantId) {
        _merchants[merchantId].paused = paused;
        emit MerchantPauseSet(merchantId, paused);
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
    /// @return planId The id assigned by the contract.
    function createPlan(
        uint256 merchantId,
        address token,
        uint256 amount,
        uint32 period,
        uint32 trialPeriod,
        uint32 maxCharges
    ) external onlyMerchantAdmin(merchantId) returns (uint256 planId) {
        if (token.code.length == 0) revert BillingInvalidToken(token);
        if (amount == 0 || amount > type(uint96).max) revert BillingInvalidAmount(amount);
        if (period < MIN_PERIOD) revert BillingInvalidPeriod(period);
        planId = ++planCount;
        _plans[planId] = Plan({
            token: token,
            merchantId: uint32(merchantId),
            period: period,
            active: true,
            amount: uint96(amount),
            trialPeriod: trialPeriod,
            maxCharges: maxCharges
        });
        emit PlanCreated(planId, merchantId, token, amount, period, trialPeriod, maxCharges);
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
    function subscribe(uint256 planId) external nonReentrant whenNotPaused returns (uint256 subscriptionId) {
        return _subscribe(planId);
    }

    /// @notice Approves this contract with an EIP-2612 permit and subscribes, in one transaction.
    /// @dev A permit that fails (for example because someone front-ran it) is tolerated when the allowance it would
    ///      have set is already in place, so the front-runner cannot block the subscription.
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
    ) external nonReentrant whenNotPaused returns (uint256 subscriptionId) {
        address token = _plans[planId].token;
        if (token == address(0)) revert BillingUnknownPlan(planId);
        if (!_permit(token, value, deadline, v, r, s) && IERC20(token).allowance(msg.sender, address(this)) < value) {
            revert BillingPermitFailed(planId);
        }
        return _subscribe(planId);
    }

    /// @notice Cancels a subscription for good. No further charge is possible.
    /// @dev Only the customer or the merchant admin; operators cannot cancel. Works while paused.
    /// @param subscriptionId The subscription.
    function cancel(uint256 subscriptionId) external {
        Subscription storage sub = _subscriptions[subscriptionId];
        Status status = sub.status;
        if (status == Status.None) revert BillingUnknownSubscription(subscriptionId);
        address customer = sub.customer;
        uint256 merchantId = sub.merchantId;
        if (msg.sender != customer && msg.sender != _merchants[merchantId].admin) {
            revert BillingUnauthorizedCanceller(subscriptionId, msg.sender);
        }
        if (status != Status.Active && status != Status.PastDue) {
            revert BillingSubscriptionNotActive(subscriptionId, status);
        }
        sub.status = Status.Cancelled;
        emit SubscriptionCancelled(subscriptionId, merchantId, customer, msg.sender);
    }

    // ------------------------------------------------------------------ charges

    /// @notice Charges the due period of one subscription.
    /// @dev Registered operators and the merchant admin. Reverts when the charge is not allowed (unknown, not active,
    ///      not due, merchant paused, unauthorized). When the token transfer fails the subscription goes past due
    ///      and the call returns false; when it has been past due for longer than the grace period it lapses.
    /// @param subscriptionId The subscription.
    /// @return charged True when the period was paid.
    function charge(uint256 subscriptionId) external nonReentrant whenNotPaused returns (bool charged) {
        return _charge(subscriptionId, registry.isOperator(msg.sender), true);
    }

    /// @notice Charges many subscriptions; an item that cannot be charged never reverts the batch.
    /// @dev Registered operators (any subscription) and merchant admins (their own). Each item ends in exactly one
    ///      event: {Charged}, {ChargeFailed}, {SubscriptionLapsed} or {ChargeSkipped}. A repeated id is charged again
    ///      only if another period is due by then, so a duplicate can never pay a period twice.
    /// @param subscriptionIds The subscriptions.
    /// @return charged How many periods were paid.
    function chargeMany(
        uint256[] calldata subscriptionIds
    ) external nonReentrant whenNotPaused returns (uint256 charged) {
        bool callerIsOperator = registry.isOperator(msg.sender);
        for (uint256 i = 0; i < subscriptionIds.length; ++i) {
            charged += SafeCast.toUint(_charge(subscriptionIds[i], callerIsOperator, false));
        }
    }

    // -------------------------------------------------------------------- pause

    /// @notice Stops all charges and subscriptions, across every merchant.
    /// @dev Only the owner (the Safe). Cancellations stay possible.
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Resumes charges and subscriptions after {pause}.
    /// @dev Only the owner (the Safe).
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice Disabled: see {BillingRenounceDisabled}.
    function renounceOwnership() public view override onlyOwner {
        revert BillingRenounceDisabled();
    }

    // -------------------------------------------------------------------- views

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

    /// @notice A subscription's record.
    /// @param subscriptionId The subscription.
    /// @return The subscription (status None if unknown).
    function getSubscription(uint256 subscriptionId) external view returns (Subscription memory) {
        return _subscriptions[subscriptionId];
    }

    /// @notice When a past-due subscription first failed to pay (meaningful while past due).
    /// @param subscriptionId The subscription.
    /// @return Unix time in seconds.
    function pastDueSince(uint256 subscriptionId) external view returns (uint256) {
        return _subscriptions[subscriptionId].pastDueSince;
    }

    /// @notice When the next period of a subscription is due (meaningful while active or past due).
    /// @param subscriptionId The subscription.
    /// @return Unix time in seconds.
    function nextChargeAt(uint256 subscriptionId) external view returns (uint256) {
        return _subscriptions[subscriptionId].nextChargeAt;
    }

    /// @notice A subscription's status.
    /// @param subscriptionId The subscription.
    /// @return The status (None if unknown).
    function statusOf(uint256 subscriptionId) external view returns (Status) {
        return _subscriptions[subscriptionId].status;
    }

    /// @notice Whether a charge now would attempt to collect a period (ignoring who calls and the customer's balance).
    /// @param subscriptionId The subscription.
    /// @return True when active or past due within the grace period, due, and neither globally nor merchant paused.
    function isDue(uint256 subscriptionId) external view returns (bool) {
        return _isDue(subscriptionId);
    }

    /// @notice {isDue} for many subscriptions in one call (a keeper checks a whole batch with one eth_call).
    /// @param subscriptionIds The subscriptions.
    /// @return due `due[i]` is `isDue(subscriptionIds[i])`.
    function areDue(uint256[] calldata subscriptionIds) external view returns (bool[] memory due) {
        due = new bool[](subscriptionIds.length);
        for (uint256 i = 0; i < subscriptionIds.length; ++i) due[i] = _isDue(subscriptionIds[i]);
    }

    // ---------------------------------------------------------------- internals

    function _isDue(uint256 subscriptionId) private view returns (bool) {
        Subscription storage sub = _subscriptions[subscriptionId];
        Status status = sub.status;
        if (paused() || block.timestamp < sub.nextChargeAt) return false;
        if (_merchants[sub.merchantId].paused) return false;
        if (status == Status.Active) return true;
        return status == Status.PastDue && block.timestamp < uint256(sub.pastDueSince) + gracePeriod;
    }

    function _subscribe(uint256 planId) private returns (uint256 subscriptionId) {
        Plan memory plan = _plans[planId];
        if (plan.token == address(0)) revert BillingUnknownPlan(planId);
        if (!plan.active) revert BillingPlanInactive(planId);
        Merchant storage merchant = _merchants[plan.merchantId];
        if (merchant.paused) revert BillingMerchantPaused(plan.merchantId);

        subscriptionId = ++subscriptionCount;
        uint256 firstChargeAt = block.timestamp + plan.trialPeriod;
        // Without a trial the first period is paid here, so the schedule starts one period later.
        uint256 paidNow = SafeCast.toUint(plan.trialPeriod == 0);
        uint256 next = firstChargeAt + paidNow * plan.period;
        bool completes = paidNow == 1 && plan.maxCharges == 1;
        _subscriptions[subscriptionId] = Subscription({
            customer: msg.sender,
            nextChargeAt: SafeCast.toUint32(next),
            chargeCount: uint32(paidNow),
            status: _statusAfterCharge(completes),
            token: plan.token,
            amount: plan.amount,
            merchantId: plan.merchantId,
            period: plan.period,
            maxCharges: plan.maxCharges,
            planId: uint32(planId),
            pastDueSince: 0
        });
        emit Subscribed(
            subscriptionId,
            plan.merchantId,
            msg.sender,
            planId,
            plan.token,
            plan.amount,
            plan.period,
            firstChargeAt,
            plan.maxCharges
        );
        if (paidNow == 0) return subscriptionId;
        IERC20(plan.token).safeTransferFrom(msg.sender, merchant.beneficiary, plan.amount);
        emit Charged(subscriptionId, plan.merchantId, msg.sender, plan.amount, 0, next);
        if (completes) emit SubscriptionCompleted(subscriptionId, plan.merchantId, msg.sender);
        return subscriptionId;
    }

    /// @dev One charge attempt. `strict` reverts on a rule violation ({charge}); otherwise it emits {ChargeSkipped}
    ///      and returns false ({chargeMany}). Token failures and lapses never revert, so their state change sticks.
    function _charge(uint256 subscriptionId, bool callerIsOperator, bool strict) private returns (bool) {
        Subscription storage sub = _subscriptions[subscriptionId];
        Subscription memory s = sub;

        if (s.status == Status.None) {
            if (strict) revert BillingUnknownSubscription(subscriptionId);
            return _skip(subscriptionId, SkipReason.UnknownSubscription);
        }
        uint256 merchantId = s.merchantId;
        Merchant storage merchant = _merchants[merchantId];
        if (!callerIsOperator && msg.sender != merchant.admin) {
            if (strict) revert BillingUnauthorizedCharger(subscriptionId, msg.sender);
            return _skip(subscriptionId, SkipReason.Unauthorized);
        }
        if (s.status != Status.Active && s.status != Status.PastDue) {
            if (strict) revert BillingSubscriptionNotActive(subscriptionId, s.status);
            return _skip(subscriptionId, SkipReason.NotActive);
        }
        if (merchant.paused) {
            if (strict) revert BillingMerchantPaused(merchantId);
            return _skip(subscriptionId, SkipReason.MerchantPaused);
        }
        if (block.timestamp < s.nextChargeAt) {
            if (strict) revert BillingNotDue(subscriptionId, s.nextChargeAt);
            return _skip(subscriptionId, SkipReason.NotDue);
        }
        if (s.status == Status.PastDue && block.timestamp >= uint256(s.pastDueSince) + gracePeriod) {
            sub.status = Status.Lapsed;
            emit SubscriptionLapsed(subscriptionId, merchantId, s.customer);
            return false;
        }
        return _collect(sub, s, subscriptionId, merchant.beneficiary);
    }

    /// @dev Pays one period: effects first, then the token call, and the effects undone if the token refuses.
    function _collect(
        Subscription storage sub,
        Subscription memory s,
        uint256 subscriptionId,
        address beneficiary
    ) private returns (bool) {
        uint256 periodIndex = s.chargeCount;
        uint256 next = uint256(s.nextChargeAt) + s.period;
        // A schedule that would run past the uint32 clock (year 2106) ends with this period instead of reverting,
        // which would take a whole batch down with it.
        bool completes = (s.maxCharges != 0 && periodIndex + 1 >= s.maxCharges) || next > type(uint32).max;

        if (next <= type(uint32).max) sub.nextChargeAt = uint32(next);
        sub.chargeCount = uint32(periodIndex + 1);
        Status status = _statusAfterCharge(completes);
        if (status != s.status) sub.status = status;

        if (!IERC20(s.token).trySafeTransferFrom(s.customer, beneficiary, s.amount)) {
            uint256 since = s.pastDueSince;
            if (s.status == Status.Active) {
                since = block.timestamp;
                sub.pastDueSince = SafeCast.toUint32(since);
            }
            sub.nextChargeAt = s.nextChargeAt;
            sub.chargeCount = s.chargeCount;
            sub.status = Status.PastDue;
            emit ChargeFailed(subscriptionId, s.merchantId, s.customer, periodIndex, since);
            return false;
        }
        emit Charged(subscriptionId, s.merchantId, s.customer, s.amount, periodIndex, next);
        if (completes) emit SubscriptionCompleted(subscriptionId, s.merchantId, s.customer);
        return true;
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

    function _statusAfterCharge(bool completes) private pure returns (Status) {
        if (completes) return Status.Completed;
        return Status.Active;
    }

    function _skip(uint256 subscriptionId, SkipReason reason) private returns (bool) {
        emit ChargeSkipped(subscriptionId, reason);
        return false;
    }

    function _checkMerchantAdmin(uint256 merchantId) private view {
        address admin = _merchants[merchantId].admin;
        if (admin == address(0)) revert BillingUnknownMerchant(merchantId);
        if (msg.sender != admin) revert BillingNotMerchantAdmin(merchantId, msg.sender);
    }
}
