import { once } from "node:events";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { DEFAULT_DEMO_OPTIONS, runDemo } from "../../scripts/demo/story.js";
import { Narrator } from "../../scripts/demo/ui.js";

/**
 * Runs the demo and prints the billing console's URL at the end; with `--serve` the last keeper keeps serving it
 * until SIGINT or SIGTERM. The exit code is 0 only if every check held.
 */
export default async function demo(args: { serve: boolean }, hre: HardhatRuntimeEnvironment) {
  const connection = await hre.network.create();
  const narrator = new Narrator();
  const started = Date.now();
  const onConsole = async (url: string) => {
    if (!args.serve) {
      narrator.say(`billing console: ${url} (it closes with the demo; npm run demo -- --serve keeps it up)`);
      return;
    }
    narrator.say(`billing console: ${url}  (serving the story's store; Ctrl-C stops)`);
    await Promise.race([once(process, "SIGINT"), once(process, "SIGTERM")]);
  };
  try {
    await runDemo(connection, narrator, { ...DEFAULT_DEMO_OPTIONS, onConsole });
  } catch (error) {
    narrator.check("the story ran to the end", false, (error as Error).message);
  }
  const failed = narrator.failed;
  console.log(
    `\n${narrator.checks.length - failed.length} of ${narrator.checks.length} checks held ` +
      `in ${((Date.now() - started) / 1000).toFixed(1)} s on network "${connection.networkName}".`,
  );
  for (const check of failed) {
    console.log(`FAILED: [${check.step}] ${check.claim}${check.detail ? ` (${check.detail})` : ""}`);
  }
  process.exitCode = failed.length === 0 ? 0 : 1;
  await connection.close();
}
