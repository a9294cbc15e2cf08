import { createInterface } from "node:readline/promises";

import { SafeTaskError } from "../lib/errors.js";

/**
 * Asks the person at the terminal to confirm `question`; `--yes` confirms without asking. Without a terminal (a pipe,
 * CI) and without `--yes` it refuses, so a script never signs by accident.
 *
 * @param question What is about to happen.
 * @param yes `--yes`.
 * @throws SafeTaskError when confirmation is impossible or the answer is not yes.
 */
export async function confirm(question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (process.stdin.isTTY !== true) {
    throw new SafeTaskError(
      "not signing: no terminal to confirm on; check the proposal with operators:show, then rerun with --yes",
    );
  }
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await terminal.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim()))
      throw new SafeTaskError("not signed: you did not confirm; nothing was written");
  } finally {
    terminal.close();
  }
}
