import { readFile } from "node:fs/promises";

import { expect } from "chai";
import hre from "hardhat";

import RecurringBillingSystemModule from "../../deploy/modules/RecurringBillingSystem.js";
import { checkDeploymentParameters, parseParametersJson } from "../../tasks/deploy/parameters.js";
import { ethers } from "./fixtures.js";

const constructorInputs = async (contractName: string) =>
  ethers.Interface.from((await hre.artifacts.readArtifact(contractName)).abi).deploy.inputs;

/** Checks `parameters` (JSON text) against the production module, as `ignition deploy` now does first. */
async function check(text: string, source = "params.json") {
  await checkDeploymentParameters(
    RecurringBillingSystemModule,
    parseParametersJson(text, source),
    source,
    constructorInputs,
  );
}

const SAFE = "0x1111111111111111111111111111111111111111";

async function rejection(action: () => Promise<unknown>): Promise<string> {
  try {
    await action();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected a rejection");
}

describe("Ignition parameters check", function () {
  it("names the placeholder left in deploy/parameters/sepolia.json, and the file, in one line", async function () {
    const source = "deploy/parameters/sepolia.json";
    const message = await rejection(async () => check(await readFile(source, "utf8"), source));
    expect(message).to.equal(
      'deploy/parameters/sepolia.json: RecurringBilling.owner is "<SAFE_ADDRESS>", a placeholder, not a valid ' +
        "address (constructor argument initialOwner of RecurringBilling); also invalid: " +
        "RecurringBilling.initialOperators. Nothing was deployed.",
    );
  });

  it("accepts deploy/parameters/localhost.json", async function () {
    await check(await readFile("deploy/parameters/localhost.json", "utf8"));
  });

  it("names a bad $global value once, and reads bigints the way Ignition does", async function () {
    const parameters = { $global: { owner: "0x1234" }, RecurringBilling: { gracePeriod: "604800n" } };
    expect(await rejection(() => check(JSON.stringify(parameters)))).to.equal(
      'params.json: $global.owner is "0x1234", not a valid address ' +
        "(constructor argument initialOwner of RecurringBilling). Nothing was deployed.",
    );
  });

  it("names the bad element of an array and a negative integer", async function () {
    const parameters = {
      RecurringBilling: {
        owner: ethers.ZeroAddress,
        initialOperators: [ethers.ZeroAddress, "<KEEPER_OPERATOR_ADDRESS>"],
        gracePeriod: -1,
      },
    };
    expect(await rejection(() => check(JSON.stringify(parameters)))).to.equal(
      'params.json: RecurringBilling.initialOperators is "<KEEPER_OPERATOR_ADDRESS>", a placeholder, not a valid ' +
        "address (constructor argument initialOperators of RecurringBilling); also invalid: " +
        "RecurringBilling.gracePeriod. Nothing was deployed.",
    );
  });

  it("refuses a contracts v1 OperatorRegistry section, saying where its parameters went", async function () {
    const parameters = { OperatorRegistry: { owner: ethers.ZeroAddress }, RecurringBilling: { owner: SAFE } };
    expect(await rejection(() => check(JSON.stringify(parameters)))).to.equal(
      'params.json: section "OperatorRegistry" is not a module of this deployment (the registry is now created by ' +
        "RecurringBilling: move owner, initialOperators and guardian into the RecurringBilling section). " +
        "Nothing was deployed.",
    );
  });

  it("refuses a grace period outside 1 hour to 365 days", async function () {
    for (const gracePeriod of [3_599, 31_536_001]) {
      const parameters = { RecurringBilling: { owner: SAFE, gracePeriod } };
      expect(await rejection(() => check(JSON.stringify(parameters)))).to.equal(
        `params.json: RecurringBilling.gracePeriod is ${gracePeriod} seconds, outside 3600 (1 hour) to 31536000 ` +
          "(365 days). Nothing was deployed.",
      );
    }
    await check(JSON.stringify({ RecurringBilling: { owner: SAFE, gracePeriod: 3_600 } }));
    await check(JSON.stringify({ RecurringBilling: { owner: SAFE, gracePeriod: "31536000n" } }));
  });

  it("refuses the owner or the guardian as an initial operator", async function () {
    const guardian = "0x2222222222222222222222222222222222222222";
    for (const [role, admin] of [
      ["owner", SAFE],
      ["guardian", guardian],
    ]) {
      const parameters = { RecurringBilling: { owner: SAFE, guardian, initialOperators: [admin] } };
      expect(await rejection(() => check(JSON.stringify(parameters)))).to.equal(
        `params.json: RecurringBilling.initialOperators contains the ${role} ${admin}: an admin can never be an ` +
          "operator (the registry would revert with RegistryAdminAsOperator). Nothing was deployed.",
      );
    }
  });

  it("leaves a missing parameter to Ignition, which names it itself", async function () {
    await check("{}");
  });

  it("rejects a file that is not JSON or not an object of modules", function () {
    expect(() => parseParametersJson("{ owner: 1 }", "p.json")).to.throw(/^p\.json is not valid JSON: /);
    expect(() => parseParametersJson("[]", "p.json")).to.throw(/^p\.json must be an object of modules/);
  });

  it("ignition deploy fails with that line before Ignition starts, and sends nothing", async function () {
    const before = await ethers.provider.getBlockNumber();
    const error = console.error;
    const printed: string[] = [];
    console.error = (...parts: unknown[]) => printed.push(parts.join(" "));
    let result: { success: boolean; error?: Error };
    try {
      result = (await hre.tasks.getTask(["ignition", "deploy"]).run({
        modulePath: "deploy/modules/RecurringBillingSystem.ts",
        parameters: "deploy/parameters/sepolia.json",
      })) as typeof result;
    } finally {
      console.error = error;
    }
    expect(result.success).to.equal(false);
    expect(result.error?.message).to.match(/^deploy\/parameters\/sepolia\.json: RecurringBilling\.owner is "<SAFE_/);
    expect(printed).to.deep.equal([`Error: ${result.error?.message}`]);
    expect(await ethers.provider.getBlockNumber()).to.equal(before);
  });
});
