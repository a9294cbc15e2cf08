// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FalseReturnToken
/// @notice Test double of an ERC-20 that returns false instead of reverting when `transferFrom` cannot succeed
///         (insufficient balance or allowance), as some older tokens do.
contract FalseReturnToken is ERC20 {
    constructor() ERC20("False Return Token", "FALSE") {}

    /// @notice Creates `value` tokens for `to`; open to anyone, as this is a test double.
    /// @param to The recipient.
    /// @param value The amount.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }

    /// @notice Like ERC-20 `transferFrom`, but returns false (moving nothing) when balance or allowance is short.
    /// @param from The holder.
    /// @param to The recipient.
    /// @param value The amount.
    /// @return True when the tokens moved.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (balanceOf(from) < value || allowance(from, msg.sender) < value) return false;
        return super.transferFrom(from, to, value);
    }
}
