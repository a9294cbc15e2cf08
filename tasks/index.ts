import { keeperTasks } from "../keeper/src/hardhat-tasks.js";
import { safeTasks } from "./safe/index.js";

/** Every task this project adds to Hardhat. */
export const tasks = [...safeTasks, ...keeperTasks];
