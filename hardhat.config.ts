import { createRequire } from "node:module";

import hardhatLedgerPlugin from "@nomicfoundation/hardhat-ledger";
import hardhatToolboxMochaEthersPlugin from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

import { tasks } from "./tasks/index.js";

const require = createRequire(import.meta.url);

/**
 * The Ledger accounts of `sepoliaLedger`, from LEDGER_ACCOUNTS (comma-separated addresses). Read here rather than with
 * configVariable because Hardhat needs the list itself to know which signing requests go to the device.
 */
const ledgerAccounts = (process.env.LEDGER_ACCOUNTS ?? "")
  .split(",")
  .map((account) => account.trim())
  .filter((account) => account !== "")
  .map((account) => account as `0x${string}`);

// solc-js from the pinned npm package: builds never download a compiler.
const compiler = {
  version: "0.8.30",
  path: require.resolve("solc/soljson.js"),
  settings: {
    optimizer: { enabled: true, runs: 10_000 },
    viaIR: true,
    evmVersion: "cancun",
  },
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthersPlugin, hardhatLedgerPlugin],
  tasks,
  solidity: {
    profiles: {
      default: compiler,
      production: compiler,
    },
  },
  paths: {
    ignition: "deploy",
  },
  test: {
    solidity: {
      fuzz: { runs: 256 },
      // Handler actions per invariant: runs x depth = 40 x 250 = 10,000. failOnRevert: the handler swallows the
      // reverts it provokes, so a reverting fuzzer call is a bug and every call counts as one executed action.
      invariant: { runs: 40, depth: 250, failOnRevert: true },
    },
  },
  networks: {
    hardhatMainnet: {
      type: "edr-simulated",
      chainType: "l1",
    },
    localhost: {
      type: "http",
      chainType: "l1",
      // HARDHAT_NODE_URL points the tasks at a node on another port (the process-level tests use a free port).
      url: process.env.HARDHAT_NODE_URL ?? "http://127.0.0.1:8545",
    },
    sepolia: {
      type: "http",
      chainType: "l1",
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("SEPOLIA_PRIVATE_KEY")],
    },
    // Safe owners sign on a Ledger: eth_signTypedData_v4 for these accounts goes to the device (see README, Safe admin).
    sepoliaLedger: {
      type: "http",
      chainType: "l1",
      url: configVariable("SEPOLIA_RPC_URL"),
      ledgerAccounts,
    },
    // A remote signer (e.g. a signing proxy or a KMS gateway) that holds the owner's key behind a JSON-RPC URL and
    // answers eth_accounts and eth_signTypedData_v4 itself: no key ever reaches this process.
    remoteSigner: {
      type: "http",
      chainType: "l1",
      url: configVariable("REMOTE_SIGNER_URL"),
    },
  },
});
