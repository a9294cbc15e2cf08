// The Safe tasks run through Hardhat's task runner in this process (as the CLI does), on the fixtures' chain.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { networkHelpers, safeOwnedRegistryFixture } from "./fixtures.js";

export { runTask, type TaskResult } from "../support/run-task.js";

/** The Safe-owned registry fixture, a temporary folder, a proposal path in it and the contracts file. */
export async function taskSetup() {
  const fixture = await networkHelpers.loadFixture(safeOwnedRegistryFixture);
  const dir = await mkdtemp(path.join(tmpdir(), "safe-tasks-"));
  const contracts = path.join(dir, "contract-networks.json");
  await writeFile(contracts, JSON.stringify(fixture.contractNetworks));
  return { ...fixture, dir, file: path.join(dir, "proposal.json"), contracts };
}
