// The merchant tasks as a merchant runs them: the real `hardhat` CLI in its own process against `npx hardhat node`
// in another, reading what each command prints and its exit code.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";

import { expect } from "chai";
import { ethers } from "ethers";
import hre from "hardhat";

const run = promisify(execFile);
const ROOT = hre.config.paths.root;
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

/** Runs `hardhat --network localhost <args>` against the node; resolves with its exit code and output. */
async function cli(url: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(HARDHAT, ["--network", "localhost", ...args], {
      cwd: ROOT,
      env: { ...process.env, HARDHAT_NODE_URL: url, FORCE_COLOR: "0" },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("Merchant tasks on `npx hardhat node` (separate processes)", function () {
  this.timeout(240_000);
  let node: ChildProcess;
  let url: string;
  let provider: ethers.JsonRpcProvider;

  before(async function () {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    node = spawn(HARDHAT, ["node", "--port", String(port)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let printed = "";
    node.stdout?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    const deadline = Date.now() + 120_000;
    while (!printed.includes("JSON-RPC server")) {
      if (Date.now() > deadline || node.exitCode !== null) throw new Error(`hardhat node did not start: ${printed}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true });
  });

  after(async function () {
    provider?.destroy();
    if (node?.exitCode === null) {
      node.kill("SIGTERM");
      await once(node, "exit");
    }
  });

  it("registers, creates a plan, lists subscriptions and exports revenue as CSV; refuses bad input with exit code 1", async function () {
    const owner = await provider.getSigner(0);
    const customer = await provider.getSigner(3);
    const tokenArtifact = await hre.artifacts.readArtifact("BillingToken");
    const billingArtifact = await hre.artifacts.readArtifact("RecurringBilling");
    const token = await new ethers.ContractFactory(tokenArtifact.abi, tokenArtifact.bytecode, owner).deploy(
      "Test Dollar",
      "TUSD",
      owner.address,
    );
    const billing = await new ethers.ContractFactory(billingArtifact.abi, billingArtifact.bytecode, owner).deploy(
      owner.address,
      [],
      ethers.ZeroAddress,
      86_400n,
    );
    const billingAddress = await billing.getAddress();
    const tokenAddress = await token.getAddress();

    const register = await cli(url, ["merchant:register", "--billing", billingAddress, "--account", "1", "--json"]);
    expect(register.code, register.stderr).to.equal(0);
    expect(JSON.parse(register.stdout)).to.include({ merchantId: "1" });

    const plan = await cli(url, [
      "plans:create",
      ...["--billing", billingAddress, "--account", "1", "--merchant", "1"],
      ...["--token", tokenAddress, "--amount", "12.5", "--period", "1w", "--cap", "4"],
    ]);
    expect(plan.code, plan.stderr).to.equal(0);
    expect(plan.stdout).to.match(
      /^Created plan 1 for merchant 1: 12\.5 TUSD every 1w, 4 periods \(transaction 0x[0-9a-f]{64}\)\.\n$/,
    );

    await (
      await (token.connect(owner) as ethers.Contract).mint(await customer.getAddress(), ethers.parseUnits("100", 18))
    ).wait();
    await (await (token.connect(customer) as ethers.Contract).approve(billingAddress, ethers.MaxUint256)).wait();
    await (await (billing.connect(customer) as ethers.Contract).subscribe(1n)).wait();

    const list = await cli(url, ["subscriptions:list", "--billing", billingAddress, "--merchant", "1"]);
    expect(list.code, list.stderr).to.equal(0);
    expect(list.stdout).to.contain(
      `subscription 1  merchant 1  plan 1  ${await customer.getAddress()}  active  paid 1/4`,
    );

    const csv = await cli(url, ["revenue", "--billing", billingAddress, "--format", "csv", "--from", "2000-01-01"]);
    expect(csv.code, csv.stderr).to.equal(0);
    expect(csv.stdout.trim().split("\n")).to.deep.equal([
      "merchant_id,plan_id,token,symbol,charges,amount_base_units,amount",
      `1,1,${tokenAddress},TUSD,1,${ethers.parseUnits("12.5", 18)},12.5`,
    ]);

    const blockBefore = await provider.getBlockNumber();
    const bad = await cli(url, [
      "plans:create",
      ...["--billing", billingAddress, "--account", "2", "--merchant", "1"],
      ...["--token", tokenAddress, "--amount", "1", "--period", "1w"],
    ]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim()).to.match(
      /^Error: 0x[0-9a-fA-F]{40} is not merchant 1's admin \(its admin is 0x[0-9a-fA-F]{40}\); use --account$/,
    );
    expect(bad.stdout).to.equal("");
    expect(await provider.getBlockNumber()).to.equal(blockBefore);
  });
});
