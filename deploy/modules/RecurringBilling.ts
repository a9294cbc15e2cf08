import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import OperatorRegistryModule from "./OperatorRegistry.js";

/**
 * The billing contract, reading operators from the registry module's deployment.
 * Parameters: `owner` (the Safe address, required), `gracePeriod` (seconds a past-due subscription may stay unpaid,
 * default 7 days).
 */
export default buildModule("RecurringBilling", (m) => {
  const { registry } = m.useModule(OperatorRegistryModule);
  const owner = m.getParameter<string>("owner");
  const gracePeriod = m.getParameter<bigint>("gracePeriod", 7n * 24n * 60n * 60n);
  const billing = m.contract("RecurringBilling", [owner, registry, gracePeriod]);
  return { billing, registry };
});
