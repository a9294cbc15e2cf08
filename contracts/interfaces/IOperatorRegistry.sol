// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IOperatorRegistry
/// @notice The set of hot "operator" accounts allowed to trigger charges.
interface IOperatorRegistry {
    /// @notice Whether `account` is currently a registered operator.
    /// @param account The account to check.
    /// @return True if `account` may trigger charges.
    function isOperator(address account) external view returns (bool);
}
