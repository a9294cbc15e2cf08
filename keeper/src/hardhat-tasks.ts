import { task } from "hardhat/config";
import type { TaskDefinition } from "hardhat/types/tasks";

/** Development entry point: run the keeper against a Hardhat network. */
export const keeperTasks: TaskDefinition[] = [
  task("keeper:run", "Run the Recurring Billing keeper against this network until Ctrl-C")
    .addOption({
      name: "keeperConfig",
      description: "Keeper config JSON (rpcUrl is ignored: the task uses the --network connection)",
      defaultValue: "keeper.json",
    })
    .addOption({
      name: "keyVar",
      description:
        'Configuration variable with the operator key ("npx hardhat keystore set NAME" or an env variable); empty: the config\'s signer',
      defaultValue: "",
    })
    .setAction(() => import("./hardhat-task-run.js"))
    .build(),
];
