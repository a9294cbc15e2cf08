// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeOnTransferToken
/// @notice Test double of a fee-on-transfer ERC-20: every transfer burns `FEE_BPS` of the amount, so the recipient
///         receives less than the sender is debited. The sender is debited exactly the amount requested.
contract FeeOnTransferToken is ERC20 {
    /// @notice Fee burnt on each transfer, in basis points of the amount.
    uint256 public constant FEE_BPS = 100;

    constructor() ERC20("Fee On Transfer Token", "FEE") {}

    /// @notice Creates `value` tokens for `to`, free of fee; open to anyone, as this is a test double.
    /// @param to The recipient.
    /// @param value The amount.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }

    /// @dev Transfers (not mints or burns) deliver `value` minus the fee and burn the fee.
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * FEE_BPS) / 10_000;
        super._update(from, to, value - fee);
        super._update(from, address(0), fee);
    }
}
