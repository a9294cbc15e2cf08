import { task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";
import type { TaskDefinition } from "hardhat/types/tasks";

const registryOption = {
  name: "registry",
  description: "OperatorRegistry address (default: the one Ignition deployed on this network)",
  defaultValue: "",
} as const;
const contractsOption = {
  name: "contracts",
  description: "protocol-kit contractNetworks JSON (default on a local chain: proposals/safe-contracts-<chainId>.json)",
  defaultValue: "",
} as const;
const fileOption = {
  name: "file",
  description: "Proposal JSON file",
  type: ArgumentType.STRING_WITHOUT_DEFAULT,
  defaultValue: undefined,
} as const;
const keyVarOption = {
  name: "keyVar",
  description: "Configuration variable holding the private key (keystore or environment), e.g. SAFE_OWNER_KEY",
  defaultValue: "",
} as const;
const accountOption = {
  name: "account",
  description: "Index of a node account to use instead of a key (local development)",
  type: ArgumentType.INT,
  defaultValue: -1,
} as const;

const safeOption = {
  name: "safe",
  description: "The owner Safe (default: the registry's owner)",
  defaultValue: "",
} as const;

/** Safe admin tasks: local Safe deployment, operator rotation and the guardian. */
export const safeTasks: TaskDefinition[] = [
  task("safe:deploy-local", "Deploy the Safe 1.5.0 contracts and a Safe on a development chain")
    .addOption({
      name: "owners",
      description: "Comma-separated owners (default: node accounts 1, 2, 3)",
      defaultValue: "",
    })
    .addOption({ name: "threshold", description: "Signatures required", type: ArgumentType.INT, defaultValue: 2 })
    .addOption({ name: "salt", description: "Salt of the Safe proxy", type: ArgumentType.BIGINT, defaultValue: 0n })
    .addOption({ ...contractsOption, description: "Where to write protocol-kit's contractNetworks JSON" })
    .setAction(() => import("./actions/deploy-local.js"))
    .build(),
  task("operators:list", "List the registry's operators, owner Safe and guardian")
    .addOption(registryOption)
    .setAction(() => import("./actions/list.js"))
    .build(),
  task("operators:propose", "Write a proposal file that rotates operators through the owner Safe in one transaction")
    .addOption(registryOption)
    .addOption(safeOption)
    .addOption({ name: "add", description: "Comma-separated operators to add", defaultValue: "" })
    .addOption({ name: "remove", description: "Comma-separated operators to remove", defaultValue: "" })
    .addOption({ ...fileOption, description: "Where to write the proposal (default: under proposals/)" })
    .addOption(contractsOption)
    .setAction(() => import("./actions/propose.js"))
    .build(),
  task("operators:propose-guardian", "Write a proposal file that sets the registry's guardian through the owner Safe")
    .addOption(registryOption)
    .addOption(safeOption)
    .addOption({
      name: "guardian",
      description: "The new guardian, which may only remove operators; the zero address disables the fast path",
      defaultValue: "",
    })
    .addOption({ ...fileOption, description: "Where to write the proposal (default: under proposals/)" })
    .addOption(contractsOption)
    .setAction(() => import("./actions/propose-guardian.js"))
    .build(),
  task("operators:sign", "Show a proposal, sign it as a Safe owner and add the signature to the file")
    .addOption(fileOption)
    .addOption(keyVarOption)
    .addOption(accountOption)
    .addOption(contractsOption)
    .setAction(() => import("./actions/sign.js"))
    .build(),
  task("operators:merge", "Merge copies of one proposal signed in parallel by different owners into one file")
    .addOption({
      name: "out",
      description: "Where to write the merged proposal (may be one of the inputs)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addVariadicArgument({ name: "files", description: "The signed copies of the proposal", defaultValue: [] })
    .setAction(() => import("./actions/merge.js"))
    .build(),
  task("operators:execute", "Execute a proposal signed by the Safe's threshold of owners, in one transaction")
    .addOption(fileOption)
    .addOption(keyVarOption)
    .addOption(accountOption)
    .addOption(contractsOption)
    .setAction(() => import("./actions/execute.js"))
    .build(),
  task("operators:revoke", "Guardian fast path: remove operators at once, without the Safe")
    .addOption(registryOption)
    .addOption({ name: "remove", description: "Comma-separated operators to remove", defaultValue: "" })
    .addOption(keyVarOption)
    .addOption(accountOption)
    .setAction(() => import("./actions/revoke.js"))
    .build(),
];
