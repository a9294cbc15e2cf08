import { mkdir } from "node:fs/promises";
import path from "node:path";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress, parseAddressList } from "../lib/addresses.js";
import { SafeTaskError } from "../lib/errors.js";
import { createProposal } from "../lib/proposal.js";
import { toTxBuilderBatch } from "../lib/tx-builder.js";
import {
  connect,
  loadContractNetworks,
  resolveRegistry,
  type OutputOptions,
  runSafeTask,
  saveNewProposal,
} from "./common.js";
import { writeBatch } from "./export.js";
import { printProposal } from "./print.js";

interface ProposeArgs extends OutputOptions {
  registry: string;
  safe: string;
  add: string;
  remove: string;
  file: string | undefined;
  contracts: string;
  format: string;
}

/**
 * `operators:propose`: writes a rotation proposal file for the owners to sign with these tasks, or (`--format
 * tx-builder`) the same rotation as a Safe{Wallet} Transaction Builder batch.
 */
export default async function propose(args: ProposeArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    if (args.format !== "proposal" && args.format !== "tx-builder") {
      throw new SafeTaskError(`--format must be "proposal" or "tx-builder", not "${args.format}"`);
    }
    const remove = parseAddressList(args.remove, "--remove");
    const add = parseAddressList(args.add, "--add");
    const safeAddress = args.safe === "" ? undefined : parseAddress(args.safe, "--safe");
    const { provider, chainId } = await connect(hre);
    const registryAddress = await resolveRegistry(hre, chainId, args.registry);
    const proposal = await createProposal({
      provider,
      contractNetworks: await loadContractNetworks(hre, chainId, args.contracts),
      registryAddress,
      safeAddress,
      remove,
      add,
    });
    if (args.format === "tx-builder") {
      const batch = toTxBuilderBatch(proposal);
      const file =
        args.file ?? path.join("proposals", `rotation-chain${proposal.chainId}-${proposal.safe}-tx-builder.json`);
      printProposal(proposal);
      await mkdir(path.dirname(path.resolve(file)), { recursive: true });
      await writeBatch(file, batch);
      return { file, batch };
    }
    const file = await saveNewProposal(args.file, "rotation", proposal);
    return { file, proposal };
  }, args);
}
