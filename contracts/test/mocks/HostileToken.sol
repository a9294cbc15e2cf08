// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HostileToken
/// @notice Test double of the token a hostile merchant may bill in (plan registration is open): an ERC-20 whose
///         `transferFrom` behaves honestly until switched to one of the hostile behaviours of {Behaviour}. It can
///         also act as an account itself ({execute}), for example as the admin of the merchant whose plan bills in it.
contract HostileToken is ERC20 {
    /// @notice What `transferFrom` does.
    enum Behaviour {
        /// A plain ERC-20 transfer.
        Honest,
        /// Burns every unit of gas it is given (an INVALID opcode).
        BurnAllGas,
        /// Burns `gasToBurn` gas, then makes a plain transfer: an expensive but working token.
        BurnGasThenTransfer,
        /// Moves nothing and returns false.
        ReturnFalse,
        /// Calls `target` with `payload` (once), then moves nothing and returns false.
        CallThenReturnFalse
    }

    /// @notice The current behaviour of `transferFrom`.
    Behaviour public behaviour;
    /// @notice Gas burnt by a {Behaviour.BurnGasThenTransfer} transfer.
    uint256 public gasToBurn;

    address private _target;
    bytes private _payload;

    /// @notice Whether the last {Behaviour.CallThenReturnFalse} call succeeded.
    bool public callSucceeded;

    /// @notice An {execute} call reverted; carries its revert data.
    /// @param result The revert data.
    error HostileTokenCallFailed(bytes result);

    constructor() ERC20("Hostile Token", "HOSTILE") {}

    /// @notice Creates `value` tokens for `to`; open to anyone, as this is a test double.
    /// @param to The recipient.
    /// @param value The amount.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }

    /// @notice Switches `transferFrom` to `newBehaviour`.
    /// @param newBehaviour The behaviour.
    /// @param gasToBurn_ Gas a {Behaviour.BurnGasThenTransfer} transfer burns.
    function setBehaviour(Behaviour newBehaviour, uint256 gasToBurn_) external {
        behaviour = newBehaviour;
        gasToBurn = gasToBurn_;
    }

    /// @notice Sets the call a {Behaviour.CallThenReturnFalse} transfer makes (once).
    /// @param target The contract to call.
    /// @param payload The calldata.
    function arm(address target, bytes calldata payload) external {
        _target = target;
        _payload = payload;
        callSucceeded = false;
    }

    /// @notice Makes this token call `target` with `data`, so that it can act as an account (a merchant admin).
    /// @param target The contract to call.
    /// @param data The calldata.
    /// @return result The call's return data.
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        bool succeeded;
        // solhint-disable-next-line avoid-low-level-calls
        (succeeded, result) = target.call(data);
        if (!succeeded) revert HostileTokenCallFailed(result);
    }

    /// @notice ERC-20 `transferFrom`, or the hostile behaviour selected with {setBehaviour}.
    /// @param from The holder.
    /// @param to The recipient.
    /// @param value The amount.
    /// @return True when the tokens moved (false for the behaviours that return false).
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        Behaviour current = behaviour;
        if (current == Behaviour.BurnAllGas) {
            assembly {
                invalid()
            }
        }
        if (current == Behaviour.BurnGasThenTransfer) _burnGas(gasToBurn);
        if (current == Behaviour.ReturnFalse) return false;
        if (current == Behaviour.CallThenReturnFalse) {
            address target = _target;
            if (target != address(0)) {
                _target = address(0);
                // solhint-disable-next-line avoid-low-level-calls
                (callSucceeded, ) = target.call(_payload);
            }
            return false;
        }
        return super.transferFrom(from, to, value);
    }

    /// @dev Burns `amount` gas; given less, it runs out of gas, as an honest but expensive token would.
    function _burnGas(uint256 amount) private view {
        uint256 left = gasleft();
        uint256 stopAt = left > amount ? left - amount : 0;
        while (gasleft() > stopAt) {}
    }
}
