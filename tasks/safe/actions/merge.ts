import { existsSync } from "node:fs";
import path from "node:path";

import { SafeTaskError } from "../lib/errors.js";
import { readProposal, writeProposal } from "../lib/proposal-file.js";
import { mergeProposals } from "../lib/proposal-merge.js";
import { type OutputOptions, runSafeTask } from "./common.js";
import { printProposal } from "./print.js";

interface MergeArgs extends OutputOptions {
  out: string | undefined;
  files: string[];
}

/**
 * `operators:merge`: merges copies of one proposal that owners signed in parallel into one file. Offline: it needs no
 * network, and `operators:execute` re-checks the result against the chain.
 */
export default async function merge(args: MergeArgs) {
  return runSafeTask(async () => {
    if (args.out === undefined || args.out === "") {
      throw new SafeTaskError("--out is required: where to write the merged proposal");
    }
    const seen = new Set<string>();
    for (const file of args.files) {
      if (seen.has(path.resolve(file))) throw new SafeTaskError(`${file} is given twice`);
      seen.add(path.resolve(file));
    }
    const copies = [];
    for (const file of args.files) copies.push({ source: file, proposal: await readProposal(file) });
    const merged = mergeProposals(copies);
    // Writing over one of the inputs is fine (it only gains signatures); any other existing file is left alone.
    const overwrite = seen.has(path.resolve(args.out));
    if (!overwrite && existsSync(args.out)) {
      throw new SafeTaskError(`${args.out} already exists: choose another --out (or one of the files being merged)`);
    }
    await writeProposal(args.out, merged, { exclusive: !overwrite });
    printProposal(merged);
    console.log(
      `Merged ${copies.length} files into ${args.out}: ${merged.signatures.length} signature(s). ` +
        `Next: operators:execute --file ${args.out} once it holds the Safe's threshold.`,
    );
    return merged;
  }, args);
}
