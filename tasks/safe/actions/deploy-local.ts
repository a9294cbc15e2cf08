import { existsSync } from "node:fs";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddressList } from "../lib/addresses.js";
import { SafeTaskError } from "../lib/errors.js";
import {
  createLocalSafe,
  deploySafeContracts,
  fromContractNetworks,
  missingSafeContracts,
  type SafeContracts,
  validateOwnersAndThreshold,
} from "../lib/local-safe.js";
import {
  connect,
  defaultContractsFile,
  loadContractNetworks,
  type OutputOptions,
  runSafeTask,
  saveContractNetworks,
} from "./common.js";

interface DeployLocalArgs extends OutputOptions {
  owners: string;
  threshold: number;
  salt: bigint;
  contracts: string;
  replace: boolean;
}

/**
 * `safe:deploy-local`: Safe 1.5.0 contracts and one Safe on a development chain. Idempotent: the contracts listed in
 * the contracts file are reused while they are on chain, and the same owners, threshold and salt give back the same
 * Safe. The file is written only when it gains this chain's entry, or with `--replace`.
 */
export default async function deployLocal(args: DeployLocalArgs, hre: HardhatRuntimeEnvironment) {
  return runSafeTask(async () => {
    const { chainId } = await connect(hre);
    const { ethers } = await hre.network.getOrCreate();
    const signers = await ethers.getSigners();
    if (signers.length === 0) throw new SafeTaskError("the network has no account to deploy with");
    const owners =
      args.owners === ""
        ? signers.slice(1, 4).map((signer) => signer.address)
        : parseAddressList(args.owners, "--owners");
    const file = args.contracts !== "" ? args.contracts : defaultContractsFile(hre, chainId);
    const existing = existsSync(file) ? await loadContractNetworks(hre, chainId, file) : undefined;
    const listed = fromContractNetworks(existing?.[chainId.toString()] as Record<string, string> | undefined);

    let contracts: SafeContracts | undefined;
    let contractsReused = false;
    if (listed !== undefined && !args.replace) {
      const missing = await missingSafeContracts(ethers.provider, listed);
      if (missing.length > 0) {
        throw new SafeTaskError(
          `${file} lists Safe contracts for chain ${chainId} that are not on chain (${missing.join(", ")}; was the ` +
            "node restarted?): rerun with --replace to deploy new ones and overwrite the file, or choose another " +
            "--contracts",
        );
      }
      contracts = listed;
      contractsReused = true;
    }
    // Validate owners and threshold before deploying anything.
    validateOwnersAndThreshold(owners, args.threshold);
    contracts ??= await deploySafeContracts(signers[0]);
    const deployment = await createLocalSafe({
      deployer: signers[0],
      owners,
      threshold: args.threshold,
      saltNonce: args.salt,
      contracts,
    });
    if (!contractsReused) {
      // Other chains' entries stay; this chain's entry is new, or replaced because --replace was given.
      await saveContractNetworks(file, { ...existing, ...deployment.contractNetworks });
    }

    console.log(
      `Safe ${deployment.safeAddress} on chain ${chainId}${deployment.reused ? " (already deployed: reused)" : ""}`,
    );
    console.log(`  owners (${deployment.threshold} of ${owners.length}): ${deployment.owners.join(", ")}`);
    for (const [name, address] of Object.entries(deployment.contracts)) console.log(`  ${name}: ${address}`);
    console.log(
      contractsReused
        ? `Safe contracts reused from ${file} (unchanged; --replace deploys new ones).`
        : `contractNetworks (for protocol-kit's Safe.init) ${args.replace && listed !== undefined ? "replaced in" : "saved to"} ${file}.`,
    );
    return { ...deployment, contractsFile: file, contractsReused, safeReused: deployment.reused };
  }, args);
}
