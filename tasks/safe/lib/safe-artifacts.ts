import { createRequire } from "node:module";

import type { InterfaceAbi } from "ethers";

const require = createRequire(import.meta.url);

/** A compiled Safe contract as shipped by `@safe-global/safe-smart-account` (Hardhat artifact format). */
export interface SafeArtifact {
  contractName: string;
  abi: InterfaceAbi;
  bytecode: string;
}

/** Where each Safe 1.5.0 contract lives under `build/artifacts/contracts/` of `@safe-global/safe-smart-account`. */
const ARTIFACT_PATHS = {
  SafeL2: "SafeL2.sol/SafeL2.json",
  SafeProxyFactory: "proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
  MultiSend: "libraries/MultiSend.sol/MultiSend.json",
  MultiSendCallOnly: "libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json",
  CompatibilityFallbackHandler: "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json",
  SignMessageLib: "libraries/SignMessageLib.sol/SignMessageLib.json",
  CreateCall: "libraries/CreateCall.sol/CreateCall.json",
  SimulateTxAccessor: "accessors/SimulateTxAccessor.sol/SimulateTxAccessor.json",
} as const;

/** Name of a Safe contract that {@link loadSafeArtifact} can load. */
export type SafeContractName = keyof typeof ARTIFACT_PATHS;

/**
 * Loads the ABI and creation bytecode of a Safe 1.5.0 contract from the installed npm package, so a local Safe is built
 * from exactly the audited release and never from sources compiled here.
 *
 * @param name The contract to load.
 */
export function loadSafeArtifact(name: SafeContractName): SafeArtifact {
  return require(`@safe-global/safe-smart-account/build/artifacts/contracts/${ARTIFACT_PATHS[name]}`) as SafeArtifact;
}
