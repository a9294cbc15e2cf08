// `npm run demo` (in-process chain) or `npm run demo -- --network localhost` (a running `npx hardhat node`).
import { network } from "hardhat";

import { DEFAULT_DEMO_OPTIONS, runDemo } from "./demo/story.js";
import { Narrator } from "./demo/ui.js";

const connection = await network.create();
const narrator = new Narrator();
const started = Date.now();
try {
  await runDemo(connection, narrator, DEFAULT_DEMO_OPTIONS);
} catch (error) {
  narrator.check("the story ran to the end", false, (error as Error).message);
}
const failed = narrator.failed;
console.log(
  `\n${narrator.checks.length - failed.length} of ${narrator.checks.length} checks held ` +
    `in ${((Date.now() - started) / 1000).toFixed(1)} s on network "${connection.networkName}".`,
);
for (const check of failed)
  console.log(`FAILED: [${check.step}] ${check.claim}${check.detail ? ` (${check.detail})` : ""}`);
process.exitCode = failed.length === 0 ? 0 : 1;
await connection.close();
