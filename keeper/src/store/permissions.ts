// The embedded store holds the keeper's whole history (and signed transactions): owner-only. PGlite creates its
// files 0666 whatever the process umask, so the tree is tightened after it opens and after it closes; files it
// creates in between sit in a 0700 folder no other user can enter.
import { chmodSync, readdirSync } from "node:fs";
import path from "node:path";

/** Sets folders under (and including) `dir` to 0700 and files to 0600. */
export function restrictTree(dir: string): void {
  chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) restrictTree(full);
    else if (entry.isFile()) chmodSync(full, 0o600);
  }
}
