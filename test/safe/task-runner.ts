// Runs the Safe tasks through Hardhat's task runner in this process, as the CLI does, on the fixtures' chain.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import hre from "hardhat";

import { networkHelpers, safeOwnedRegistryFixture } from "./fixtures.js";

/** A task's result, everything it printed (`output`), and what it printed on stdout alone. */
export type TaskResult = { success: boolean; value?: unknown; error?: Error; output: string; stdout: string };

/** Runs a task as the CLI would, capturing what it prints instead of showing it. */
export async function runTask(name: string, args: Record<string, unknown>): Promise<TaskResult> {
  const log = console.log;
  const error = console.error;
  const lines: string[] = [];
  const stdout: string[] = [];
  console.log = (...parts: unknown[]) => {
    lines.push(parts.join(" "));
    stdout.push(parts.join(" "));
  };
  console.error = (...parts: unknown[]) => lines.push(parts.join(" "));
  try {
    const result = (await hre.tasks.getTask(name).run(args)) as Omit<TaskResult, "output">;
    return { ...result, output: lines.join("\n"), stdout: stdout.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** The Safe-owned registry fixture, a temporary folder, a proposal path in it and the contracts file. */
export async function taskSetup() {
  const fixture = await networkHelpers.loadFixture(safeOwnedRegistryFixture);
  const dir = await mkdtemp(path.join(tmpdir(), "safe-tasks-"));
  const contracts = path.join(dir, "contract-networks.json");
  await writeFile(contracts, JSON.stringify(fixture.contractNetworks));
  return { ...fixture, dir, file: path.join(dir, "proposal.json"), contracts };
}
