// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title BillingToken
/// @notice ERC-20 with EIP-2612 permit used to pay subscriptions on test networks.
/// @dev The owner may mint so that local networks and demos can fund customers. On a production network a
///      merchant bills in an existing token (any ERC-20) and this contract is not deployed.
contract BillingToken is ERC20, ERC20Permit, Ownable {
    /// @param name_ Token name, also the EIP-712 domain name used by permit.
    /// @param symbol_ Token symbol.
    /// @param initialOwner Account allowed to mint.
    constructor(
        string memory name_,
        string memory symbol_,
        address initialOwner
    ) ERC20(name_, symbol_) ERC20Permit(name_) Ownable(initialOwner) {}

    /// @notice Creates `amount` tokens for `to`.
    /// @dev Only the owner. Emits {Transfer} from the zero address.
    /// @param to Recipient of the new tokens.
    /// @param amount Amount in the token's smallest unit.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
