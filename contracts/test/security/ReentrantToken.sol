// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice Test double of a malicious ERC-20: once armed, its next `transferFrom` calls back into a target (the billing
///         contract) with chosen calldata before moving the tokens, and records how that nested call ended.
/// @dev The nested call's failure is recorded, not bubbled up, so a test can assert both that the outer call went on
///      as a normal transfer and which error stopped the re-entry.
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _payload;

    /// @notice Whether a re-entry was attempted since the token was last armed.
    bool public reentryAttempted;
    /// @notice Whether the last re-entry call succeeded.
    bool public reentrySucceeded;
    /// @notice Return or revert data of the last re-entry call.
    bytes public reentryResult;

    /// @notice The token called back into `target`.
    /// @param target The contract called.
    /// @param succeeded Whether the nested call succeeded.
    /// @param result Its return or revert data.
    event ReentryAttempted(address indexed target, bool succeeded, bytes result);

    constructor() ERC20("Reentrant Token", "REENTER") {}

    /// @notice Creates `value` tokens for `to`; open to anyone, as this is a test double.
    /// @param to The recipient.
    /// @param value The amount.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }

    /// @notice Makes the next `transferFrom` call `target` with `payload` first (once).
    /// @param target The contract to re-enter.
    /// @param payload The calldata of the nested call.
    function arm(address target, bytes calldata payload) external {
        _target = target;
        _payload = payload;
        reentryAttempted = false;
        reentrySucceeded = false;
        delete reentryResult;
    }

    /// @notice ERC-20 `transferFrom`, preceded by the armed re-entry if any.
    /// @param from The holder.
    /// @param to The recipient.
    /// @param value The amount.
    /// @return True, as the transfer reverts on failure.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        address target = _target;
        if (target != address(0)) {
            // Disarm first so the nested call cannot recurse through this token again.
            _target = address(0);
            // solhint-disable-next-line avoid-low-level-calls
            (bool succeeded, bytes memory result) = target.call(_payload);
            reentryAttempted = true;
            reentrySucceeded = succeeded;
            reentryResult = result;
            emit ReentryAttempted(target, succeeded, result);
        }
        return super.transferFrom(from, to, value);
    }
}
