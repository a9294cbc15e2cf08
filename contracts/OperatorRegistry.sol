// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {IOperatorRegistry, IOperatorSink} from "./interfaces/IOperatorRegistry.sol";

/// @title OperatorRegistry
/// @notice The operators (keeper hot keys) allowed to trigger charges on the RecurringBilling that created it.
/// @dev Owned by a Safe with two-step ownership. The Safe rotates operators atomically with {rotateOperators}; a
///      guardian (for example a 1-of-N incident-response Safe) may only revoke, never add, so a leaked key can be
///      cut off without waiting for the full owner threshold. Operators have no power here at all.
///
///      The registry is created by its billing contract ({billing}, immutable) and pushes every change into it in the
///      same call, so the billing contract answers "is this an operator?" from its own storage on every charge
///      without a call, and can never disagree with the registry. The owner, the pending owner and the guardian can
///      never be operators: a leaked hot key must never also hold the power to add or revoke operators.
contract OperatorRegistry is IOperatorRegistry, Ownable2Step {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice The billing contract this registry was created by and keeps in step.
    IOperatorSink public immutable billing;

    EnumerableSet.AddressSet private _operators;

    /// @notice Account allowed to revoke operators (and nothing else); zero when none.
    address public guardian;

    /// @notice Emitted when `operator` is registered.
    /// @param operator The new operator.
    event OperatorAdded(address indexed operator);

    /// @notice Emitted when `operator` is removed.
    /// @param operator The removed operator.
    /// @param by The owner or guardian that removed it.
    event OperatorRemoved(address indexed operator, address indexed by);

    /// @notice Emitted when the guardian changes.
    /// @param previousGuardian The guardian before the change (zero if none).
    /// @param newGuardian The guardian after the change (zero to disable).
    event GuardianChanged(address indexed previousGuardian, address indexed newGuardian);

    /// @notice `operator` is not a registered operator, so it cannot be removed.
    /// @param operator The offending address.
    error RegistryNotOperator(address operator);

    /// @notice `operator` is already registered, so it cannot be added again.
    /// @param operator The offending address.
    error RegistryAlreadyOperator(address operator);

    /// @notice The zero address cannot be an operator.
    error RegistryZeroAddress();

    /// @notice `account` holds an admin role here (owner, pending owner or guardian), so it cannot be an operator.
    /// @param account The offending address.
    error RegistryAdminAsOperator(address account);

    /// @notice `account` is an operator, so it cannot become the guardian or the owner.
    /// @param account The offending address.
    error RegistryOperatorAsAdmin(address account);

    /// @notice `caller` is neither the owner nor the guardian.
    /// @param caller The account that tried to revoke.
    error RegistryUnauthorizedRevoker(address caller);

    /// @notice Ownership cannot be renounced: the registry would be frozen with whatever operators it has.
    error RegistryRenounceDisabled();

    /// @dev Called by the billing contract's constructor, which reads the initial set back with {operators}: it
    ///      cannot be called while it is being constructed.
    /// @param initialOwner The Safe that administers operators.
    /// @param initialGuardian The account that may revoke operators (zero for none).
    /// @param initialOperators Operators registered at deployment.
    constructor(
        address initialOwner,
        address initialGuardian,
        address[] memory initialOperators
    ) Ownable(initialOwner) {
        billing = IOperatorSink(msg.sender);
        if (initialGuardian != address(0)) {
            guardian = initialGuardian;
            emit GuardianChanged(address(0), initialGuardian);
        }
        for (uint256 i = 0; i < initialOperators.length; ++i) {
            _record(initialOperators[i]);
        }
    }

    /// @notice Removes `remove` and then adds `add`, atomically: either every change applies or none does.
    /// @dev Only the owner. Reverts if any removed address is not an operator or any added address already is one
    ///      (after the removals), so a stale proposal fails loudly instead of doing half a rotation.
    /// @param remove Operators to remove.
    /// @param add Operators to add.
    function rotateOperators(address[] calldata remove, address[] calldata add) external onlyOwner {
        for (uint256 i = 0; i < remove.length; ++i) {
            _remove(remove[i]);
        }
        for (uint256 i = 0; i < add.length; ++i) {
            _record(add[i]);
            billing.syncOperator(add[i], true);
        }
    }

    /// @notice Incident response: removes `accounts` at once.
    /// @dev Owner or guardian. Can only remove, so a compromised guardian can at worst stop billing until the Safe
    ///      re-adds operators; it can never grant charging rights.
    /// @param accounts Operators to remove.
    function revokeOperators(address[] calldata accounts) external {
        if (msg.sender != owner() && msg.sender != guardian) revert RegistryUnauthorizedRevoker(msg.sender);
        for (uint256 i = 0; i < accounts.length; ++i) {
            _remove(accounts[i]);
        }
    }

    /// @notice Sets the account that may revoke operators; zero disables the fast path.
    /// @dev Only the owner. An operator cannot be the guardian: one leaked hot key could then revoke all the others.
    /// @param newGuardian The new guardian.
    function setGuardian(address newGuardian) external onlyOwner {
        if (_operators.contains(newGuardian)) revert RegistryOperatorAsAdmin(newGuardian);
        emit GuardianChanged(guardian, newGuardian);
        guardian = newGuardian;
    }

    /// @notice Starts handing the registry over to `newOwner`, who must accept.
    /// @dev Only the owner. An operator cannot become the owner.
    /// @param newOwner The proposed owner (zero cancels a pending handover).
    function transferOwnership(address newOwner) public override onlyOwner {
        if (_operators.contains(newOwner)) revert RegistryOperatorAsAdmin(newOwner);
        super.transferOwnership(newOwner);
    }

    /// @inheritdoc IOperatorRegistry
    function isOperator(address account) external view returns (bool) {
        return _operators.contains(account);
    }

    /// @inheritdoc IOperatorRegistry
    function operators() external view returns (address[] memory) {
        return _operators.values();
    }

    /// @notice Number of registered operators.
    /// @return The count.
    function operatorCount() external view returns (uint256) {
        return _operators.length();
    }

    /// @notice Disabled: see {RegistryRenounceDisabled}.
    function renounceOwnership() public view override onlyOwner {
        revert RegistryRenounceDisabled();
    }

    /// @dev Adds `operator` to the set after every check; the caller pushes it to the billing contract.
    function _record(address operator) private {
        if (operator == address(0)) revert RegistryZeroAddress();
        if (operator == owner() || operator == pendingOwner() || operator == guardian) {
            revert RegistryAdminAsOperator(operator);
        }
        if (!_operators.add(operator)) revert RegistryAlreadyOperator(operator);
        emit OperatorAdded(operator);
    }

    function _remove(address operator) private {
        if (!_operators.remove(operator)) revert RegistryNotOperator(operator);
        billing.syncOperator(operator, false);
        emit OperatorRemoved(operator, msg.sender);
    }
}
