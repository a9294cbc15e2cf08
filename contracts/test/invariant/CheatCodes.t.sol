// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// `Vm` is the name every Foundry-style test uses for this interface.
// solhint-disable interface-starts-with-i
/// @title Vm
/// @notice The few Foundry-compatible cheatcodes (served by Hardhat's EDR at a fixed address) that the property tests
///         use. Declared here because forge-std is not published on npm.
interface Vm {
    /// @notice Sets `block.timestamp`.
    /// @param newTimestamp The new timestamp.
    function warp(uint256 newTimestamp) external;

    /// @notice Makes the next call come from `msgSender`.
    /// @param msgSender The account to impersonate.
    function prank(address msgSender) external;

    /// @notice Expects the next call to revert with exactly `revertData`.
    /// @param revertData The expected revert data (selector and arguments).
    function expectRevert(bytes calldata revertData) external;

    /// @notice Fails the test unless `left == right`.
    /// @param left The observed value.
    /// @param right The expected value.
    /// @param error What was checked.
    function assertEq(uint256 left, uint256 right, string calldata error) external pure;

    /// @notice Fails the test unless `left <= right`.
    /// @param left The observed value.
    /// @param right The bound.
    /// @param error What was checked.
    function assertLe(uint256 left, uint256 right, string calldata error) external pure;

    /// @notice Fails the test unless `condition` holds.
    /// @param condition The condition.
    /// @param error What was checked.
    function assertTrue(bool condition, string calldata error) external pure;
}

/// @dev keccak256("hevm cheat code") truncated to 20 bytes: where every Foundry-compatible runner serves cheatcodes.
Vm constant VM = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
