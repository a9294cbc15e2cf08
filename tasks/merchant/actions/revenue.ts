import { ethers } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { type CommonArgs, openBilling, runMerchantTask, toJson } from "../lib/context.js";
import { MerchantTaskError } from "../lib/errors.js";
import { formatTime, parseChoice, parseInteger, parseTime } from "../lib/parse.js";
import { revenue } from "../lib/reads.js";

interface Args extends CommonArgs {
  merchant: string;
  from: string;
  to: string;
  format: string;
  fromBlock: string;
}

const DAY = 86_400n;

/** `revenue`: what was charged per merchant, plan and token in a time range, as a table, CSV or JSON. */
export default async function revenueTask(args: Args, hre: HardhatRuntimeEnvironment) {
  const format = args.json ? "json" : args.format;
  return runMerchantTask(
    false,
    async () => {
      const chosen = parseChoice(format, ["table", "csv", "json"] as const, "--format");
      const merchantId = args.merchant === "" ? undefined : parseInteger(args.merchant, "--merchant", 1n);
      const fromBlock =
        args.fromBlock === "" ? undefined : Number(parseInteger(args.fromBlock, "--from-block", 0n, 2n ** 53n));
      const context = await openBilling(hre, args.billing);
      const latest = await context.ethers.provider.getBlock("latest");
      const now = BigInt(latest?.timestamp ?? Math.floor(Date.now() / 1000));
      const toTime = args.to === "" ? now + 1n : parseTime(args.to, "--to");
      const fromTime = args.from === "" ? toTime - 30n * DAY : parseTime(args.from, "--from");
      if (fromTime >= toTime)
        throw new MerchantTaskError(`--from ${formatTime(fromTime)} is not before --to ${formatTime(toTime)}`);
      const report = await revenue(context, { merchantId, fromTime, toTime, fromBlock });
      const rows = report.rows.map((row) => ({
        merchantId: row.merchantId,
        planId: row.planId,
        token: row.token,
        symbol: row.symbol,
        charges: row.charges,
        amount: row.amount,
        amountFormatted: ethers.formatUnits(row.amount, row.decimals),
      }));
      return {
        format: chosen,
        from: formatTime(fromTime),
        to: formatTime(toTime),
        fromBlock: report.fromBlock,
        toBlock: report.toBlock,
        rows,
      };
    },
    (report) => {
      if (report.format === "json") return console.log(toJson(report));
      if (report.format === "csv") {
        console.log("merchant_id,plan_id,token,symbol,charges,amount_base_units,amount");
        for (const row of report.rows) {
          console.log(
            [
              row.merchantId,
              row.planId,
              row.token,
              csvField(row.symbol),
              row.charges,
              row.amount,
              row.amountFormatted,
            ].join(","),
          );
        }
        return;
      }
      console.log(`Revenue from ${report.from} to ${report.to} (blocks ${report.fromBlock}..${report.toBlock}):`);
      if (report.rows.length === 0) return console.log("  no charges.");
      for (const row of report.rows) {
        console.log(
          `  merchant ${row.merchantId}  plan ${row.planId}  ${row.charges} charges  ${row.amountFormatted} ${row.symbol}  (${row.token})`,
        );
      }
    },
  );
}

/**
 * A CSV field from arbitrary text (a token's symbol is whatever its deployer chose): quoted when it holds a comma, a
 * quote or a line break, and prefixed with ' when a spreadsheet would read it as a formula.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
