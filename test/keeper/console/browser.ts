/// <reference lib="dom" />
// The billing console in a real browser (Debian's Chromium driven by playwright-core) after a demo-like run: a keeper
// process bills three subscriptions, one payment fails. The page must show the chain's revenue per merchant, the
// failed payment in the past-due list, a new charge without a reload, ask for the token, and draw its charts.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { chromium, type BrowserContext, type Page } from "playwright-core";

import { customerAddress, MONTH, sendInBlocks, tokenInterface } from "../support/billing-setup.js";
import type { KeeperProcess } from "../support/keeper-process.js";
import { Scenario } from "../support/scenario.js";

const TOKEN = "console-test-token-0123456789";
/** Where the screenshot goes: CI keeps this folder as the test's output. */
const OUTPUT = path.resolve("test-results", "console");
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Sum of every Charged amount on chain for merchant 1 (the scenario's only merchant). */
async function chainRevenue(scenario: Scenario): Promise<{ charges: number; amount: bigint }> {
  const charges = await scenario.charges();
  return { charges: charges.length, amount: BigInt(charges.length) * scenario.deployment.amount };
}

/** The revenue row's amount cell, base units in parentheses when the token is known. */
async function revenueCell(page: Page): Promise<string> {
  return (await page.locator("#revenue tbody tr").first().locator("td").nth(3).textContent()) ?? "";
}

describe("Billing console in a browser", function () {
  this.timeout(240_000);
  let scenario: Scenario;
  let keeper: KeeperProcess;
  let context: BrowserContext;
  let profile: string;
  let consoleUrl: string;

  before(async function () {
    scenario = await Scenario.start({
      chain: { automine: false, intervalMs: 200 },
      subscriptions: 3,
      config: { console: { port: 0, token: TOKEN } },
    });
    // The third customer withdraws the allowance: its next payment fails.
    await sendInBlocks(scenario.chain, [
      {
        from: customerAddress(2),
        to: scenario.deployment.token,
        data: tokenInterface.encodeFunctionData("approve", [scenario.deployment.billing, 0n]),
        gas: 100_000n,
      },
    ]);
    keeper = await scenario.startKeeper();
    const started = await keeper.waitForLog("billing console started");
    consoleUrl = String(started.consoleUrl);
    await scenario.chain.warp(MONTH);
    await scenario.waitForCharges(5, 60_000, keeper);
    profile = mkdtempSync(path.join(tmpdir(), "console-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1200, height: 2200 },
    });
  });

  after(async function () {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await scenario?.stop();
  });

  it("asks for the token, then shows the chain's revenue, the failed payment, live charges and charts", async function () {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));

    // The token is required: the API refuses without it and the page asks for it.
    expect((await fetch(new URL("api/overview", consoleUrl))).status).to.equal(401);
    await page.goto(consoleUrl);
    await page.locator("#login").waitFor({ state: "visible" });
    expect(await page.locator("#content").isHidden()).to.equal(true);
    await page.fill("#token", "not-the-token-at-all");
    await page.click("#login button");
    await page.locator("#login-error").filter({ hasText: "refused" }).waitFor();
    await page.fill("#token", TOKEN);
    await page.click("#login button");
    await page.locator("#content").waitFor({ state: "visible" });

    // Revenue per merchant equals the chain's Charged events.
    const before = await chainRevenue(scenario);
    await page.waitForFunction(
      (expected) => document.querySelector("#revenue tbody tr td:nth-child(4)")?.textContent?.includes(expected),
      String(before.amount),
    );
    const row = await page.locator("#revenue tbody tr").first().locator("td").allTextContents();
    expect(row.slice(0, 3)).to.deep.equal(["1", "bUSD", String(before.charges)]);

    // The failed payment is listed as past due.
    await page.locator('#past-due tbody tr[data-id="3"]').waitFor();
    expect(await page.locator("#count-past-due").textContent()).to.equal("1");

    // A new charge appears without a reload.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await scenario.chain.warp(MONTH);
    await scenario.waitForCharges(before.charges + 2, 60_000, keeper);
    const after = await chainRevenue(scenario);
    await page.waitForFunction(
      (expected) => document.querySelector("#revenue tbody tr td:nth-child(4)")?.textContent?.includes(expected),
      String(after.amount),
      { timeout: 30_000 },
    );
    expect(await revenueCell(page)).to.contain(String(after.amount));
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).to.equal(42);

    // The charts drew something: coloured pixels on each canvas.
    for (const chart of ["#charges-chart", "#revenue-chart"]) {
      const painted = await page.evaluate((selector) => {
        const canvas = document.querySelector(`${selector} canvas`) as HTMLCanvasElement | null;
        if (canvas === null || canvas.width === 0) return 0;
        const pixels = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
        let coloured = 0;
        for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 3] > 0 && pixels[i] !== pixels[i + 2]) coloured += 1;
        return coloured;
      }, chart);
      expect(painted, `${chart} has no coloured pixels`).to.be.greaterThan(50);
    }
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, "console.png"), fullPage: true });
    expect(problems).to.deep.equal([]);
  });
});
