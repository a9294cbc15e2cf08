import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import RecurringBillingModule from "./RecurringBilling.js";

/**
 * Everything a network needs in production: the billing contract and the registry it creates, both owned by the Safe.
 * Test networks add a token with `deploy/modules/BillingToken.ts` (same parameters file).
 */
export default buildModule("RecurringBillingSystem", (m) => {
  const { billing, registry } = m.useModule(RecurringBillingModule);
  return { billing, registry };
});
