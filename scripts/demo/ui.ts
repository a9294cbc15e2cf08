// What the demo prints: step headings, checks, progress bars. Quiet mode (tests) keeps only the record of checks.
import cliProgress from "cli-progress";

/** One claim the story makes, and whether the chain bore it out. */
export interface Check {
  step: string;
  claim: string;
  ok: boolean;
  detail?: string;
}

/** Collects checks and prints the story as it unfolds. */
export class Narrator {
  readonly checks: Check[] = [];
  private step = "";
  private stepNumber = 0;

  constructor(private readonly quiet = false) {}

  heading(title: string): void {
    this.step = title;
    this.stepNumber += 1;
    this.print(`\n== ${this.stepNumber}. ${title} ==`);
  }

  say(line: string): void {
    this.print(`   ${line}`);
  }

  /** Records a claim; the demo's exit code is 0 only if every claim held. */
  check(claim: string, ok: boolean, detail?: string): boolean {
    this.checks.push({ step: this.step, claim, ok, detail });
    this.print(`   ${ok ? "✔" : "✘"} ${claim}${detail ? ` (${detail})` : ""}`);
    return ok;
  }

  /** A progress bar for a long phase; a no-op in quiet mode. */
  progress(label: string, total: number): { tick(): void; stop(): void } {
    if (this.quiet) return { tick() {}, stop() {} };
    // A live bar on a terminal; in a log (CI, a pipe) one line when the phase ends instead of a line per update.
    const bar = new cliProgress.SingleBar(
      { format: `   ${label.padEnd(28)} [{bar}] {value}/{total}`, hideCursor: true, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    const live = process.stdout.isTTY === true;
    let done = 0;
    if (live) bar.start(total, 0);
    return {
      tick: () => {
        done += 1;
        if (live) bar.increment();
      },
      stop: () => (live ? bar.stop() : this.print(`   ${label}: ${done}/${total}`)),
    };
  }

  get failed(): Check[] {
    return this.checks.filter((check) => !check.ok);
  }

  private print(line: string): void {
    if (!this.quiet) console.log(line);
  }
}
