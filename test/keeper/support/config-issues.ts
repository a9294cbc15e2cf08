// Shared by the keeper's configuration tests: the smallest valid config, and the issues a bad one raises.
import { expect } from "chai";

import { ConfigError } from "../../../keeper/src/config.js";

const BILLING = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
export const minimal = {
  chainId: 31337,
  billingAddress: BILLING,
  signer: { type: "env", variable: "KEEPER_PRIVATE_KEY" },
};

/** The issues of the ConfigError `fn` throws; fails the test when it throws anything else or nothing. */
export function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}
