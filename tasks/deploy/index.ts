import { overrideTask } from "hardhat/config";
import type { TaskOverrideDefinition } from "hardhat/types/tasks";

/** Deployment tasks: `ignition deploy` checks its parameters before Ignition starts. */
export const deployTasks: TaskOverrideDefinition[] = [
  overrideTask(["ignition", "deploy"])
    .setAction(() => import("./check-before-deploy.js"))
    .build(),
];
