// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title NoReturnToken
/// @notice Test double of a USDT-style ERC-20 whose `transfer`, `transferFrom` and `approve` return nothing.
/// @dev Reverts on insufficient balance or allowance, like USDT. A caller that expects a bool from these functions
///      fails to decode the empty return data; SafeERC20 accepts it.
contract NoReturnToken {
    /// @notice Balance of each account.
    mapping(address account => uint256) public balanceOf;
    /// @notice Allowance granted by `owner` to `spender`.
    mapping(address owner => mapping(address spender => uint256)) public allowance;
    /// @notice Total supply.
    uint256 public totalSupply;

    /// @notice Emitted on every balance move, mints included.
    /// @param from The sender (zero on mint).
    /// @param to The recipient.
    /// @param value The amount moved.
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @notice Emitted when an allowance is set.
    /// @param owner The token holder.
    /// @param spender The account allowed to spend.
    /// @param value The allowance.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice `account` holds `balance`, less than the `needed` amount.
    /// @param account The sender.
    /// @param balance Its balance.
    /// @param needed The amount requested.
    error NoReturnTokenInsufficientBalance(address account, uint256 balance, uint256 needed);

    /// @notice `spender` may spend `allowed` of the holder's tokens, less than the `needed` amount.
    /// @param spender The caller of transferFrom.
    /// @param allowed Its allowance.
    /// @param needed The amount requested.
    error NoReturnTokenInsufficientAllowance(address spender, uint256 allowed, uint256 needed);

    /// @notice Creates `value` tokens for `to`; open to anyone, as this is a test double.
    /// @param to The recipient.
    /// @param value The amount.
    function mint(address to, uint256 value) external {
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    /// @notice Sets the caller's allowance for `spender`; returns nothing.
    /// @param spender The account allowed to spend.
    /// @param value The allowance.
    function approve(address spender, uint256 value) external {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
    }

    /// @notice Moves `value` from the caller to `to`; returns nothing.
    /// @param to The recipient.
    /// @param value The amount.
    function transfer(address to, uint256 value) external {
        _move(msg.sender, to, value);
    }

    /// @notice Moves `value` from `from` to `to` using the caller's allowance; returns nothing.
    /// @param from The holder.
    /// @param to The recipient.
    /// @param value The amount.
    function transferFrom(address from, address to, uint256 value) external {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed < value) revert NoReturnTokenInsufficientAllowance(msg.sender, allowed, value);
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
    }

    function _move(address from, address to, uint256 value) private {
        uint256 balance = balanceOf[from];
        if (balance < value) revert NoReturnTokenInsufficientBalance(from, balance, value);
        balanceOf[from] = balance - value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
