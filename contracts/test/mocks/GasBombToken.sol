// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title GasBombToken
/// @notice Test double of a hostile ERC-20 (any merchant may create a plan in any token): while armed, `transferFrom`
///         burns every unit of gas it is given and never returns. It can be disarmed, standing for a token whose
///         owner fixed it, so a test can check that a quarantined subscription is billed again.
contract GasBombToken is ERC20 {
    /// @notice Whether `transferFrom` burns all its gas.
    bool public armed;

    constructor() ERC20("Gas Bomb Token", "BOMB") {}

    /// @notice Creates `value` tokens for `to`; open to anyone, as this is a test double.
    /// @param to The recipient.
    /// @param value The amount.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }

    /// @notice Arms or disarms the bomb; open to anyone, as this is a test double.
    /// @param value True to make `transferFrom` burn all its gas.
    function setArmed(bool value) external {
        armed = value;
    }

    /// @notice ERC-20 `transferFrom`, or an endless loop while armed.
    /// @param from The holder.
    /// @param to The recipient.
    /// @param value The amount.
    /// @return True when the tokens moved.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (armed) {
            uint256 burned;
            // Runs until the call is out of gas.
            while (armed) ++burned;
        }
        return super.transferFrom(from, to, value);
    }
}
