import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/** Test-network token: the deployer owns it and may mint to fund customers. */
export default buildModule("BillingToken", (m) => {
  const name = m.getParameter("name", "Billing USD");
  const symbol = m.getParameter("symbol", "bUSD");
  const owner = m.getParameter("owner", m.getAccount(0));
  const token = m.contract("BillingToken", [name, symbol, owner]);
  return { token };
});
