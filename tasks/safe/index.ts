import { task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";
import type { TaskDefinition } from "hardhat/types/tasks";

const registryOption = {
  name: "registry",
  description: "OperatorRegistry address (default: registry() of the RecurringBilling Ignition deployed here)",
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
  description: "TESTS AND CI ONLY: configuration variable holding a raw private key (keystore or environment)",
  defaultValue: "",
} as const;
const accountOption = {
  name: "account",
  description: "Account of the network that signs, by index or address: a node account, a Ledger, a remote signer",
  defaultValue: "",
} as const;
const jsonFlag = { name: "json", description: "Print one JSON document on stdout (human text goes to stderr)" };

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
    .addFlag({ name: "replace", description: "Deploy new Safe contracts even if the contracts file's are on chain" })
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/deploy-local.js"))
    .build(),
  task("operators:list", "List the registry's operators, owner Safe and guardian")
    .addOption(registryOption)
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/list.js"))
    .build(),
  task("operators:propose", "Write a proposal file that rotates operators through the owner Safe in one transaction")
    .addOption(registryOption)
    .addOption(safeOption)
    .addOption({ name: "add", description: "Comma-separated operators to add", defaultValue: "" })
    .addOption({ name: "remove", description: "Comma-separated operators to remove", defaultValue: "" })
    .addOption({ ...fileOption, description: "Where to write the proposal (default: under proposals/)" })
    .addOption(contractsOption)
    .addOption({
      name: "format",
      description: '"proposal" (a file for operators:sign) or "tx-builder" (a Safe{Wallet} Transaction Builder batch)',
      defaultValue: "proposal",
    })
    .addFlag(jsonFlag)
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
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/propose-guardian.js"))
    .build(),
  task("operators:show", "Read-only: what a proposal does, who signed, and the three hashes a signing device shows")
    .addPositionalArgument({ name: "proposal", description: "Proposal JSON file" })
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/show.js"))
    .build(),
  task("operators:export", "Write a proposal as a Safe{Wallet} Transaction Builder batch JSON")
    .addOption(fileOption)
    .addOption({
      name: "out",
      description: "Where to write the batch (never overwritten)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "owner",
      description: "The owner exporting it (meta.createdFromOwnerAddress)",
      defaultValue: "",
    })
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/export.js"))
    .build(),
  task("operators:sign", "Show a proposal and its hashes, confirm, sign it as a Safe owner and add the signature")
    .addOption(fileOption)
    .addFlag({ name: "yes", description: "Sign without asking (required without a terminal)" })
    .addOption(keyVarOption)
    .addOption(accountOption)
    .addOption(contractsOption)
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/sign.js"))
    .build(),
  task("operators:send-to-service", "Hand a signed proposal to a Safe Transaction Service, for Safe{Wallet} co-owners")
    .addOption(fileOption)
    .addOption({
      name: "serviceUrl",
      description: "The service's base URL, ending in /api (default: configuration variable SAFE_TX_SERVICE_URL)",
      defaultValue: "",
    })
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/send-to-service.js"))
    .build(),
  task("operators:merge", "Merge copies of one proposal signed in parallel by different owners into one file")
    .addOption({
      name: "out",
      description: "Where to write the merged proposal (may be one of the inputs)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addVariadicArgument({ name: "files", description: "The signed copies of the proposal", defaultValue: [] })
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/merge.js"))
    .build(),
  task("operators:execute", "Execute a proposal signed by the Safe's threshold of owners, in one transaction")
    .addOption(fileOption)
    .addOption(keyVarOption)
    .addOption(accountOption)
    .addOption(contractsOption)
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/execute.js"))
    .build(),
  task("operators:revoke", "Guardian fast path: remove operators at once, without the Safe")
    .addOption(registryOption)
    .addOption({ name: "remove", description: "Comma-separated operators to remove", defaultValue: "" })
    .addOption(keyVarOption)
    .addOption(accountOption)
    .addFlag(jsonFlag)
    .setAction(() => import("./actions/revoke.js"))
    .build(),
];
