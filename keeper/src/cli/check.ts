// `keeper check`: is this keeper ready to charge? One line per check ("ok" or "FAIL" with what to do). Exit 0 when
// every check passed, 1 when one failed, 2 when the configuration itself is wrong.
import { accessSync, constants, existsSync } from "node:fs";
import path from "node:path";
import { getHeapStatistics } from "node:v8";

import { formatEther, Interface } from "ethers";

import { type KeeperConfig, loadConfig } from "../config.js";
import { redactUrl, RpcClient } from "../rpc.js";
import { createSigner } from "../signer.js";
import { lockInstance, storeLockHolder } from "../store/lock.js";
import { KEEPER_NODE_OPTIONS } from "../node-flags.js";
import { billingInterface } from "../sync/decode.js";

const registryInterface = new Interface(["function isOperator(address account) view returns (bool)"]);
const DEFAULT_BATCHES = 10;

type Outcome = { ok: true; detail: string } | { ok: false; detail: string } | { skip: string };

class Report {
  failed = false;
  line(name: string, outcome: Outcome): void {
    if ("skip" in outcome) process.stdout.write(`skip ${name}: ${outcome.skip}\n`);
    else {
      if (!outcome.ok) this.failed = true;
      process.stdout.write(`${outcome.ok ? "ok  " : "FAIL"} ${name}: ${outcome.detail}\n`);
    }
  }
}

const message = (err: unknown) => (err as Error).message.split("\n")[0];

async function checkStore(config: KeeperConfig): Promise<Outcome> {
  if ("dataDir" in config.store) {
    const dir = config.store.dataDir;
    const holder = storeLockHolder(dir);
    if (holder !== undefined) return { ok: false, detail: `${dir} is locked by a running keeper (pid ${holder})` };
    try {
      // Checks without creating anything: the directory, or the nearest folder the keeper would create it in.
      let existing = dir;
      while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
      accessSync(existing, constants.W_OK);
      // The lock file goes beside the directory.
      if (existsSync(path.dirname(dir))) accessSync(path.dirname(dir), constants.W_OK);
    } catch (err) {
      return { ok: false, detail: `${dir} is not writable: ${(err as NodeJS.ErrnoException).code ?? message(err)}` };
    }
    return { ok: true, detail: `${dir} writable, not locked` };
  }
  try {
    const lock = await lockInstance(config.store.postgresUrl, config.instanceId);
    await lock.release();
    return { ok: true, detail: `PostgreSQL reachable, instanceId ${config.instanceId} not running` };
  } catch (err) {
    return { ok: false, detail: message(err) };
  }
}

export async function runCheck(configFile: string | undefined, batchesText: string | undefined): Promise<number> {
  const batches = batchesText === undefined ? DEFAULT_BATCHES : Number(batchesText);
  if (!Number.isInteger(batches) || batches < 1) {
    process.stderr.write(`keeper check: --batches: expected a whole number >= 1, got ${JSON.stringify(batchesText)}\n`);
    return 2;
  }
  if (configFile === undefined) {
    process.stderr.write("keeper check: --config <file> is required\n");
    return 2;
  }
  const report = new Report();
  // A config or key problem is exit 2 (thrown as ConfigError, reported by main), before any other check.
  const config = loadConfig(configFile);
  const signer = await createSigner(config.signer);
  report.line("config", { ok: true, detail: `${path.resolve(configFile)} (operator ${signer.address})` });

  const rpc = new RpcClient(config.rpcUrl, { timeoutMs: Math.min(config.rpcTimeoutMs, 5000), retries: 0 });
  const url = redactUrl(config.rpcUrl);
  let head: number | undefined;
  try {
    head = await rpc.blockNumber();
    report.line("rpc", { ok: true, detail: `${url} answers (head block ${head})` });
  } catch (err) {
    report.line("rpc", { ok: false, detail: `${url}: ${message(err)}` });
  }
  const reachable = head !== undefined;
  const skip = { skip: "RPC unreachable" };

  let chainOk = false;
  if (!reachable) report.line("chain id", skip);
  else {
    const chainId = await rpc.chainId();
    chainOk = chainId === config.chainId;
    report.line("chain id", {
      ok: chainOk,
      detail: chainOk ? `${chainId}` : `the RPC serves chain ${chainId}, the config says ${config.chainId}`,
    });
  }

  let registry: string | undefined;
  if (!chainOk) report.line("billing contract", { skip: "wrong or unknown chain" });
  else {
    const code = await rpc.getCode(config.billingAddress);
    if (code === "0x") {
      report.line("billing contract", { ok: false, detail: `no code at ${config.billingAddress}` });
    } else {
      try {
        const data = billingInterface.encodeFunctionData("registry");
        registry = billingInterface.decodeFunctionResult(
          "registry",
          await rpc.call({ to: config.billingAddress, data }),
        )[0];
        report.line("billing contract", { ok: true, detail: `${config.billingAddress} (registry ${registry})` });
      } catch (err) {
        report.line("billing contract", {
          ok: false,
          detail: `${config.billingAddress} is not a RecurringBilling (registry() failed: ${message(err)})`,
        });
      }
    }
  }

  if (registry === undefined) {
    report.line("registry contract", { skip: "no billing contract" });
    report.line("operator registered", { skip: "no registry" });
  } else {
    const code = await rpc.getCode(registry);
    report.line(
      "registry contract",
      code === "0x" ? { ok: false, detail: `no code at ${registry}` } : { ok: true, detail: registry },
    );
    try {
      const data = registryInterface.encodeFunctionData("isOperator", [signer.address]);
      const [registered] = registryInterface.decodeFunctionResult("isOperator", await rpc.call({ to: registry, data }));
      report.line(
        "operator registered",
        registered
          ? { ok: true, detail: signer.address }
          : {
              ok: false,
              detail: `${signer.address} is not an operator: add it through the Safe (README, "Keeper runbook")`,
            },
      );
    } catch (err) {
      report.line("operator registered", { ok: false, detail: message(err) });
    }
  }

  if (!chainOk) report.line("balance", { skip: "wrong or unknown chain" });
  else {
    const balance = await rpc.getBalance(signer.address);
    const baseFee = (await rpc.getBlock("latest")).baseFeePerGas ?? 0n;
    const tip = BigInt(Math.round(config.fees.maxPriorityFeePerGasGwei * 1e9));
    const perBatch = BigInt(config.batch.gasBudget) * (baseFee * 2n + tip);
    const needed = perBatch * BigInt(batches);
    report.line(
      "balance",
      balance >= needed
        ? {
            ok: true,
            detail: `${formatEther(balance)} ETH covers ${batches} batches (${formatEther(needed)} ETH at current fees)`,
          }
        : {
            ok: false,
            detail: `${formatEther(balance)} ETH < ${formatEther(needed)} ETH for ${batches} batches of ${config.batch.gasBudget} gas at current fees: fund ${signer.address}`,
          },
    );
  }

  report.line("store", await checkStore(config));
  report.line("memory", heapLimit());
  return report.failed ? 1 : 0;
}

/** The heap V8 allows this process: informational, with the production setting when it is not the one in use. */
function heapLimit(): Outcome {
  const mib = Math.round(getHeapStatistics().heap_size_limit / 1048576);
  const set =
    process.execArgv.join(" ").includes("--max-old-space-size") ||
    /--max-old-space-size/.test(process.env.NODE_OPTIONS ?? "");
  return {
    ok: true,
    detail: set
      ? `V8 heap limit ${mib} MiB`
      : `V8 heap limit ${mib} MiB (V8's default for this machine; the systemd unit and the Dockerfile set NODE_OPTIONS="${KEEPER_NODE_OPTIONS}")`,
  };
}
