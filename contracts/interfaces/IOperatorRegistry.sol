// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IOperatorRegistry
/// @notice The set of hot "operator" accounts allowed to trigger charges.
interface IOperatorRegistry {
    /// @notice Whether `account` is currently a registered operator.
    /// @param account The account to check.
    /// @return True if `account` may trigger charges.
    function isOperator(address account) external view returns (bool);

    /// @notice All registered operators, in no particular order.
    /// @return The operator addresses.
    function operators() external view returns (address[] memory);
}

/// @title IOperatorSink
/// @notice A contract that keeps a local copy of a registry's operator set, updated by the registry itself.
interface IOperatorSink {
    /// @notice Records that `account` was added to (`enabled`) or removed from the registry's operators.
    /// @dev Only the registry bound to the sink may call this.
    /// @param account The operator.
    /// @param enabled True when added, false when removed.
    function syncOperator(address account, bool enabled) external;
}
