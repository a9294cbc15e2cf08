import { writeFile } from "node:fs/promises";

import { parseAddress } from "../lib/addresses.js";
import { SafeTaskError } from "../lib/errors.js";
import { readProposal } from "../lib/proposal-file.js";
import { toTxBuilderBatch } from "../lib/tx-builder.js";
import { type OutputOptions, requireFile, runSafeTask } from "./common.js";

interface ExportArgs extends OutputOptions {
  file: string | undefined;
  out: string | undefined;
  owner: string;
}

/**
 * `operators:export`: writes a proposal as a Safe{Wallet} Transaction Builder batch, for owners who sign in Safe{Wallet}.
 * Offline; never overwrites a file.
 */
export default async function exportBatch(args: ExportArgs) {
  return runSafeTask(async () => {
    const file = requireFile(args.file);
    if (args.out === undefined || args.out === "") {
      throw new SafeTaskError("--out is required: where to write the Transaction Builder batch JSON");
    }
    const owner = args.owner === "" ? undefined : parseAddress(args.owner, "--owner");
    const batch = toTxBuilderBatch(await readProposal(file), { owner });
    await writeBatch(args.out, batch);
    return { file: args.out, batch };
  }, args);
}

/** Writes a batch file, never over an existing one, and says how to import it. */
export async function writeBatch(out: string, batch: ReturnType<typeof toTxBuilderBatch>): Promise<void> {
  try {
    await writeFile(out, `${JSON.stringify(batch, null, 2)}\n`, { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new SafeTaskError(`${out} already exists: choose another --out or delete it`);
    }
    throw error;
  }
  console.log(
    `Transaction Builder batch written to ${out} (checksum ${batch.meta.checksum}). In Safe{Wallet}, open Apps > ` +
      `Transaction Builder for Safe ${batch.meta.createdFromSafeAddress} on chain ${batch.chainId}, drop the file, ` +
      "then Create batch: each owner signs there and sees the safeTxHash Safe{Wallet} computes for its own nonce.",
  );
}
