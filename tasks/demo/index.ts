import { task } from "hardhat/config";
import type { TaskDefinition } from "hardhat/types/tasks";

/** `npm run demo` (`hardhat demo`): the end-to-end story, on the in-process chain or `--network localhost`. */
export const demoTasks: TaskDefinition[] = [
  task("demo", "Tell the whole billing story end to end with the real keeper, checking every claim on chain")
    .addFlag({ name: "serve", description: "Keep the billing console up after the story (Ctrl-C stops it)" })
    .setAction(() => import("./run.js"))
    .build(),
];
