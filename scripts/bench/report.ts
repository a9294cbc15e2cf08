// Output helpers shared by the benchmark sections (scripts/bench/keeper.ts, keeper-scale.ts).

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Prints `rows` as aligned columns (the first row is the header). */
export function table(rows: string[][]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  for (const row of rows) console.log(`  ${row.map((cell, i) => cell.padEnd(widths[i])).join("  ")}`);
}
