import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * The operator registry, owned by the admins' Safe from the first block: the deployer never holds any right over it.
 * Parameters: `owner` (the Safe address, required), `initialOperators` (keeper addresses, default none).
 */
export default buildModule("OperatorRegistry", (m) => {
  const owner = m.getParameter<string>("owner");
  const initialOperators = m.getParameter<string[]>("initialOperators", []);
  const registry = m.contract("OperatorRegistry", [owner, initialOperators]);
  return { registry };
});
