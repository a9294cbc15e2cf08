import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * The billing contract and the operator registry it creates, both owned by the admins' Safe from the first block:
 * the deployer never holds any right over them.
 * Parameters: `owner` (the Safe address, required), `initialOperators` (keeper addresses, default none), `guardian`
 * (the account that may revoke operators at once, default none), `gracePeriod` (unpaused seconds a past-due
 * subscription may stay unpaid, default 7 days; 1 hour to 365 days).
 */
export default buildModule("RecurringBilling", (m) => {
  const owner = m.getParameter<string>("owner");
  const initialOperators = m.getParameter<string[]>("initialOperators", []);
  const guardian = m.getParameter<string>("guardian", "0x0000000000000000000000000000000000000000");
  const gracePeriod = m.getParameter<bigint>("gracePeriod", 7n * 24n * 60n * 60n);
  const billing = m.contract("RecurringBilling", [owner, initialOperators, guardian, gracePeriod]);
  const registry = m.contractAt("OperatorRegistry", m.staticCall(billing, "registry"));
  return { billing, registry };
});
