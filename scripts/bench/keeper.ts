// `npm run bench:keeper`: the keeper against simple baselines, side by side, on local in-process chains.
//   (1) charging N due subscriptions: keeper vs a naive loop (one `charge`, wait, next), wall time and blocks used;
//   (2) sync throughput: keeper events/s vs raw eth_getLogs over the same range;
//   (3) scale (keeper-scale.ts): BENCH_SUBS subscriptions (100,000; 1,000,000 for the closing note) on the embedded
//       store and on PostgreSQL: peak RSS, store size, sync vs raw, due query per block, CPU per 1,000 charges.
// Figures, not pass/fail tests: each line says the target and whether this run met it.
// Sizes can be lowered for a quick look: BENCH_SUBSCRIPTIONS, BENCH_NAIVE_SAMPLE, BENCH_SUBS, BENCH_BLOCK_MS;
// BENCH_SECTIONS=charging,sync,scale (the default: all) runs only some.
import { writeFileSync } from "node:fs";

import { Contract, JsonRpcProvider } from "ethers";

import {
  type BillingDeployment,
  MONTH,
  billingInterface,
  customerOfSubscription,
  deployBilling,
  subscribeCustomers,
  subscriptionRef,
} from "../../test/keeper/support/billing-setup.js";
import { TestChain } from "../../test/keeper/support/chain.js";
import { chargedEvents } from "../../test/keeper/support/chain-evidence.js";
import { KeeperProcess, KeeperWorkspace, keeperConfig } from "../../test/keeper/support/keeper-process.js";
import { benchScale } from "./keeper-scale.js";
import { sleep, table } from "./report.js";

const SUBSCRIPTIONS = Number(process.env.BENCH_SUBSCRIPTIONS ?? 10_000);
const NAIVE_SAMPLE = Number(process.env.BENCH_NAIVE_SAMPLE ?? 150);
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? "charging,sync,scale").split(",").map((s) => s.trim()));
const BLOCK_MS = Number(process.env.BENCH_BLOCK_MS ?? 200);
const BLOCK_GAS_LIMIT = 30_000_000n;
const CONFIRMATIONS = 2;

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const verdict = (met: boolean) => (met ? "PASS" : "MISS");

function startKeeper(chain: TestChain, deployment: BillingDeployment, workspace: KeeperWorkspace) {
  const config = keeperConfig(
    {
      rpcUrl: chain.url,
      chainId: chain.chainId,
      billingAddress: deployment.billing,
      startBlock: deployment.startBlock,
      dataDir: workspace.dataDir,
    },
    {
      confirmations: CONFIRMATIONS,
      pollIntervalMs: 100,
      // The operator's tuning for a 30M-gas chain: ~6M-gas batches (a gas limit of 1.2x the estimate still lets
      // five share a block) and enough of them in flight to fill several blocks.
      batch: { gasBudget: 6_000_000, maxItems: 1000 },
      maxPendingTxs: 32,
    },
  );
  return KeeperProcess.start(workspace.writeConfig(config), deployment.operator.privateKey);
}

async function waitForStart(keeper: KeeperProcess) {
  await keeper.waitForStart(60_000);
}

async function gasUsed(chain: TestChain, hashes: Iterable<string>): Promise<bigint> {
  let total = 0n;
  for (const hash of hashes) {
    const receipt = await chain.rpc<{ gasUsed: string }>("eth_getTransactionReceipt", [hash]);
    total += BigInt(receipt.gasUsed);
  }
  return total;
}

async function benchCharging() {
  console.log(
    `\n(1) charging ${SUBSCRIPTIONS} due subscriptions, block gas limit ${BLOCK_GAS_LIMIT}, a block every ${BLOCK_MS} ms`,
  );
  const chain = await TestChain.start({ automine: false, blockGasLimit: BLOCK_GAS_LIMIT });
  const workspace = new KeeperWorkspace();
  try {
    const deployment = await deployBilling(chain);
    const perCustomer = 50;
    const ids = await subscribeCustomers(chain, deployment, { count: SUBSCRIPTIONS + NAIVE_SAMPLE, perCustomer });
    const naiveIds = ids.slice(SUBSCRIPTIONS);
    const naiveRefs = naiveIds.map((id, i) =>
      subscriptionRef(deployment, id, customerOfSubscription(SUBSCRIPTIONS + i, perCustomer)),
    );
    await chain.warp(MONTH);
    await chain.setIntervalMining(BLOCK_MS);
    const afterSetup = await chain.blockNumber();

    // Naive: one charge, wait for its receipt, next. Measured on a sample and extrapolated.
    const provider = new JsonRpcProvider(chain.url, chain.chainId, { staticNetwork: true, pollingInterval: 20 });
    const billing = new Contract(deployment.billing, billingInterface, deployment.operator.connect(provider));
    const naiveStart = Date.now();
    const naiveHashes: string[] = [];
    let naiveFirstBlock = 0;
    let naiveLastBlock = 0;
    // Nonces counted here: ethers' own "pending" lookup can lag one block behind a just-mined receipt.
    let nonce = await chain.nonce(deployment.operator.address);
    for (const ref of naiveRefs) {
      const tx = await billing.charge(ref, { nonce: nonce++ });
      const receipt = (await tx.wait())!;
      naiveHashes.push(receipt.hash);
      naiveFirstBlock ||= receipt.blockNumber;
      naiveLastBlock = receipt.blockNumber;
    }
    const naiveMs = Date.now() - naiveStart;
    provider.destroy();
    const naiveBlocks = naiveLastBlock - naiveFirstBlock + 1;
    const naiveGasPerCharge = (await gasUsed(chain, naiveHashes)) / BigInt(naiveIds.length);
    const naiveScale = SUBSCRIPTIONS / naiveIds.length;

    // Keeper: a fresh process that first syncs the whole history, then charges everything due.
    const keeperStart = Date.now();
    const keeper = startKeeper(chain, deployment, workspace);
    await waitForStart(keeper);
    const keeperIds = new Set(ids.slice(0, SUBSCRIPTIONS).map(String));
    let firstChargeAt = 0;
    let charges: Awaited<ReturnType<typeof chargedEvents>> = [];
    for (;;) {
      const all = await chargedEvents(chain, deployment.billing, afterSetup + 1);
      charges = all.filter((charge) => keeperIds.has(String(charge.subscriptionId)));
      if (charges.length > 0 && firstChargeAt === 0) firstChargeAt = Date.now();
      if (charges.length >= SUBSCRIPTIONS) break;
      if (!keeper.running) throw new Error(`keeper exited:\n${keeper.describe()}`);
      if (Date.now() - keeperStart > 15 * 60_000) throw new Error(`keeper charged ${charges.length}/${SUBSCRIPTIONS}`);
      await sleep(50);
    }
    const keeperMs = Date.now() - keeperStart;
    const chargingMs = Date.now() - firstChargeAt;
    await keeper.kill("SIGTERM");
    // BENCH_KEEPER_LOG=<file> keeps the keeper's JSON log of this run, to see where its time went.
    if (process.env.BENCH_KEEPER_LOG) {
      writeFileSync(process.env.BENCH_KEEPER_LOG, keeper.logs.map((line) => JSON.stringify(line)).join("\n") + "\n");
    }
    const keeperHashes = new Set(charges.map((charge) => charge.transactionHash));
    const keeperGas = await gasUsed(chain, keeperHashes);
    const blocks = charges.map((charge) => charge.blockNumber);
    const keeperBlocks = Math.max(...blocks) - Math.min(...blocks) + 1;
    const minimumBlocks = Number((keeperGas + BLOCK_GAS_LIMIT - 1n) / BLOCK_GAS_LIMIT);
    const naiveMsTotal = naiveMs * naiveScale;
    const speedup = naiveMsTotal / keeperMs;

    table([
      ["", "wall time", "blocks used", "gas per charge", "transactions"],
      [
        `naive loop (${naiveIds.length} measured, x${naiveScale.toFixed(1)} extrapolated)`,
        `${seconds(naiveMsTotal)} (measured ${seconds(naiveMs)})`,
        `${Math.round(naiveBlocks * naiveScale)} (measured ${naiveBlocks})`,
        String(naiveGasPerCharge),
        String(SUBSCRIPTIONS),
      ],
      [
        "keeper (spawn, full sync, charge all)",
        `${seconds(keeperMs)} (charging only ${seconds(chargingMs)})`,
        String(keeperBlocks),
        String(keeperGas / BigInt(SUBSCRIPTIONS)),
        String(keeperHashes.size),
      ],
    ]);
    console.log(`  target: keeper >= 20x faster: ${speedup.toFixed(1)}x  ${verdict(speedup >= 20)}`);
    console.log(
      `  target: blocks <= 1.5x of what the gas limit allows (${minimumBlocks} for ${keeperGas} gas): ` +
        `${keeperBlocks} = ${(keeperBlocks / minimumBlocks).toFixed(2)}x  ${verdict(keeperBlocks <= 1.5 * minimumBlocks)}`,
    );
    return { chain, deployment, workspace };
  } catch (error) {
    await chain.close();
    workspace.remove();
    throw error;
  }
}

async function benchSync(chain: TestChain, deployment: BillingDeployment) {
  const head = (await chain.blockNumber()) - CONFIRMATIONS;
  console.log(`\n(2) sync throughput over blocks ${deployment.startBlock}..${head} of the same chain`);
  const provider = new JsonRpcProvider(chain.url, chain.chainId, { staticNetwork: true });
  const rawStart = Date.now();
  const logs = await provider.getLogs({ address: deployment.billing, fromBlock: deployment.startBlock, toBlock: head });
  const rawMs = Date.now() - rawStart;
  provider.destroy();
  const rawRate = logs.length / (rawMs / 1000);

  const workspace = new KeeperWorkspace();
  try {
    const keeper = startKeeper(chain, deployment, workspace);
    await waitForStart(keeper);
    const started = Date.now();
    // The keeper's own clock: when its store is open and the sync loop begins (a fresh PGlite takes seconds).
    const ready = Number((await keeper.waitForLog("store ready: syncing", 60_000)).time);
    await keeper.waitForMetric("keeper_synced_block", (block) => block >= head, 10 * 60_000);
    const synced = Date.now();
    const keeperMs = synced - ready;
    const coldMs = synced - started;
    const events = await keeper.metric("keeper_events_synced_total");
    await keeper.kill("SIGTERM");
    const keeperRate = events / (keeperMs / 1000);
    table([
      ["", "events", "time", "events/s"],
      [
        "raw eth_getLogs (one request, no decoding or storing)",
        String(logs.length),
        seconds(rawMs),
        rawRate.toFixed(0),
      ],
      [
        "keeper sync (store ready to synced, decoded and stored)",
        String(events),
        seconds(keeperMs),
        keeperRate.toFixed(0),
      ],
      [
        "keeper cold start (started to synced: + store creation)",
        String(events),
        seconds(coldMs),
        (events / (coldMs / 1000)).toFixed(0),
      ],
    ]);
    const ratio = keeperRate / rawRate;
    console.log(`  target: keeper sync >= 0.5x of raw: ${ratio.toFixed(2)}x  ${verdict(ratio >= 0.5)}`);
  } finally {
    workspace.remove();
  }
}

if (SECTIONS.has("charging") || SECTIONS.has("sync")) {
  const { chain, deployment, workspace } = await benchCharging();
  try {
    if (SECTIONS.has("sync")) await benchSync(chain, deployment);
  } finally {
    await chain.close();
    workspace.remove();
  }
}
if (SECTIONS.has("scale")) await benchScale();
