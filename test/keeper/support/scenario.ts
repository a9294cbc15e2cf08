// One keeper test scenario: a chain, the billing system with subscribed customers, a recording (optionally faulty)
// proxy in front of the chain, and keeper processes that share one data directory across restarts.
import { type BillingDeployment, type DeployOptions, deployBilling, subscribeCustomers } from "./billing-setup.js";
import { type ChainOptions, TestChain } from "./chain.js";
import { type Charge, chargeProblems, chargedEvents, nonceProblems } from "./chain-evidence.js";
import { type FaultPolicy, FaultProxy } from "./fault-proxy.js";
import { KeeperProcess, KeeperWorkspace, keeperConfig } from "./keeper-process.js";

export interface ScenarioOptions {
  chain?: ChainOptions;
  deploy?: DeployOptions;
  subscriptions: number;
  /** [no faults] the proxy still records every raw transaction. */
  faults?: FaultPolicy;
  /** More endpoints (each a proxy with its own faults) after the first: the keeper gets them all in rpc.urls. */
  moreEndpoints?: FaultPolicy[];
  /** Extra keeper config fields. */
  config?: Record<string, unknown>;
}

export class Scenario {
  readonly keepers: KeeperProcess[] = [];
  /** The proxies of `moreEndpoints`, in order. */
  readonly moreProxies: FaultProxy[] = [];

  private constructor(
    readonly chain: TestChain,
    readonly deployment: BillingDeployment,
    readonly subscriptionIds: bigint[],
    readonly proxy: FaultProxy,
    readonly workspace: KeeperWorkspace,
    readonly configPath: string,
  ) {}

  static async start(options: ScenarioOptions): Promise<Scenario> {
    const chain = await TestChain.start(options.chain);
    const deployment = await deployBilling(chain, options.deploy);
    const ids =
      options.subscriptions > 0 ? await subscribeCustomers(chain, deployment, { count: options.subscriptions }) : [];
    const proxy = await FaultProxy.start(chain.url, options.faults ?? { seed: 0 });
    const more = await Promise.all((options.moreEndpoints ?? []).map((policy) => FaultProxy.start(chain.url, policy)));
    const workspace = new KeeperWorkspace();
    const rpc = { ...(options.config?.rpc as object | undefined) };
    const endpoints = more.length > 0 ? { rpc: { ...rpc, urls: [proxy.url, ...more.map((p) => p.url)] } } : {};
    const config = keeperConfig(
      {
        rpcUrl: proxy.url,
        chainId: chain.chainId,
        billingAddress: deployment.billing,
        startBlock: deployment.startBlock,
        dataDir: workspace.dataDir,
      },
      { ...options.config, ...endpoints },
    );
    const scenario = new Scenario(chain, deployment, ids, proxy, workspace, workspace.writeConfig(config));
    scenario.moreProxies.push(...more);
    return scenario;
  }

  get operator(): string {
    return this.deployment.operator.address;
  }

  /** Starts a keeper on the scenario's config and data directory and waits until it reports it started. */
  async startKeeper(): Promise<KeeperProcess> {
    const keeper = KeeperProcess.start(this.configPath, this.deployment.operator.privateKey);
    this.keepers.push(keeper);
    await keeper.waitForStart();
    return keeper;
  }

  /** Every Charged event of the billing contract. */
  async charges(): Promise<Charge[]> {
    return chargedEvents(this.chain, this.deployment.billing, this.deployment.startBlock);
  }

  /** Polls the chain until `count` Charged events exist (or throws with what is missing). */
  async waitForCharges(count: number, timeoutMs: number, keeper?: KeeperProcess): Promise<Charge[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const charges = await this.charges();
      if (charges.length >= count) return charges;
      if (keeper !== undefined && !keeper.running) {
        throw new Error(`keeper exited with ${charges.length}/${count} charges:\n${keeper.describe()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${charges.length}/${count} charges after ${timeoutMs} ms${keeper ? `:\n${keeper.describe()}` : ""}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Findings on the chain: periods 0..periods-1 paid once each for every subscription, a clean nonce stream. */
  async problems(periods: number): Promise<string[]> {
    return [
      ...chargeProblems(await this.charges(), this.subscriptionIds, periods),
      ...(await nonceProblems(
        this.chain,
        this.operator,
        [this.proxy, ...this.moreProxies].flatMap((p) => p.transactions),
      )),
    ];
  }

  /** Transactions the proxies forwarded from the operator, once per forwarding (a re-broadcast counts again). */
  signedByOperator() {
    return [this.proxy, ...this.moreProxies]
      .flatMap((proxy) => proxy.transactions)
      .filter((tx) => tx.from.toLowerCase() === this.operator.toLowerCase());
  }

  /** Kills whatever keeper still runs and removes everything the scenario started. */
  async stop(): Promise<void> {
    for (const keeper of this.keepers) if (keeper.running) await keeper.kill("SIGKILL");
    await this.proxy.close();
    for (const proxy of this.moreProxies) await proxy.close();
    await this.chain.close();
    this.workspace.remove();
  }
}
