import type { TaskDefinition } from "hardhat/types/tasks";

/** Safe admin tasks: local Safe deployment and operator rotation. */
export const safeTasks: TaskDefinition[] = [];
