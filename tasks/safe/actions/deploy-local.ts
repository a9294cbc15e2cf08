import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddressList } from "../lib/addresses.js";
import { SafeTaskError } from "../lib/errors.js";
import { deployLocalSafe } from "../lib/local-safe.js";
import { connect, defaultContractsFile, runSafeTask, saveContractNetworks } from "./common.js";

interface DeployLocalArgs {
  owners: string;
  threshold: number;
  salt: bigint;
  contracts: string;
}

/** `safe:deploy-local`: Safe 1.5.0 contracts and one Safe on a development chain. */
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
    const deployment = await deployLocalSafe({
      deployer: signers[0],
      owners,
      threshold: args.threshold,
      saltNonce: args.salt,
    });
    const file = args.contracts !== "" ? args.contracts : defaultContractsFile(hre, chainId);
    await saveContractNetworks(file, deployment.contractNetworks);

    console.log(`Safe ${deployment.safeAddress} on chain ${chainId}`);
    console.log(`  owners (${deployment.threshold} of ${owners.length}): ${deployment.owners.join(", ")}`);
    for (const [name, address] of Object.entries(deployment.contracts)) console.log(`  ${name}: ${address}`);
    console.log(`contractNetworks (for protocol-kit's Safe.init), saved to ${file}:`);
    console.log(JSON.stringify(deployment.contractNetworks, null, 2));
    return deployment;
  });
}
