// Runs a project task through Hardhat's task runner in this process, as the CLI does, capturing what it prints.
import hre from "hardhat";

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
    const result = (await hre.tasks.getTask(name).run(args)) as Omit<TaskResult, "output" | "stdout">;
    return { ...result, output: lines.join("\n"), stdout: stdout.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}
