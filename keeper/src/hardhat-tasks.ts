import type { TaskDefinition } from "hardhat/types/tasks";

/** Development entry point: run the keeper against a Hardhat network. */
export const keeperTasks: TaskDefinition[] = [];
