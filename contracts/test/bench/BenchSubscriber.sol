// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice The one function of RecurringBilling this fixture calls.
interface IBillingSubscribe {
    /// @notice Subscribes the caller to `planId`; its first period is paid at once.
    /// @param planId The plan.
    /// @return subscriptionId The new subscription's id.
    function subscribe(uint256 planId) external returns (uint256 subscriptionId);
}

/// @title BenchSubscriber
/// @notice Benchmark fixture: a customer that takes `count` subscriptions to a plan in its constructor (it must hold
///         the tokens for their first periods by then). `npm run bench:keeper` makes a million subscriptions with
///         ten thousand of these instead of a million `subscribe` transactions: the local chain keeps every
///         transaction in memory, and a million of them took more than the machine's 24 GiB.
contract BenchSubscriber {
    /// @param billing The RecurringBilling contract.
    /// @param token The plan's token, approved to `billing` without limit.
    /// @param planId The plan to subscribe to.
    /// @param count How many subscriptions to take.
    constructor(address billing, IERC20 token, uint256 planId, uint256 count) {
        // The fixture's own token; a failed approval would show as failed subscriptions below.
        // slither-disable-next-line unused-return
        token.approve(billing, type(uint256).max);
        for (uint256 i = 0; i < count; ++i) {
            IBillingSubscribe(billing).subscribe(planId);
        }
    }
}
