import { keeperTasks } from "../keeper/src/hardhat-tasks.js";
import { demoTasks } from "./demo/index.js";
import { deployTasks } from "./deploy/index.js";
import { merchantTasks } from "./merchant/index.js";
import { safeTasks } from "./safe/index.js";

/** Every task this project adds to Hardhat, or overrides. */
export const tasks = [...safeTasks, ...deployTasks, ...merchantTasks, ...demoTasks, ...keeperTasks];
