import { ethers } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { type CommonArgs, openBilling, runMerchantTask } from "../lib/context.js";
import { formatDuration, parseInteger } from "../lib/parse.js";
import { listPlans, tokenInfo } from "../lib/reads.js";

interface Args extends CommonArgs {
  merchant: string;
  fromBlock: string;
}

/** `plans:list`: every plan (of one merchant), with its terms and whether it is open. */
export default async function plansList(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const merchantId = args.merchant === "" ? undefined : parseInteger(args.merchant, "--merchant", 1n);
      const fromBlock =
        args.fromBlock === "" ? undefined : Number(parseInteger(args.fromBlock, "--from-block", 0n, 2n ** 53n));
      const context = await openBilling(hre, args.billing);
      const plans = await listPlans(context, { merchantId, fromBlock });
      const tokens = new Map<string, { symbol: string; decimals: number }>();
      for (const plan of plans)
        if (!tokens.has(plan.token)) tokens.set(plan.token, await tokenInfo(context, plan.token));
      return plans.map((plan) => {
        const info = tokens.get(plan.token) ?? { symbol: "?", decimals: 0 };
        return { ...plan, symbol: info.symbol, amountFormatted: ethers.formatUnits(plan.amount, info.decimals) };
      });
    },
    (plans) => {
      if (plans.length === 0) return console.log("No plans.");
      for (const plan of plans) {
        console.log(
          `plan ${plan.planId}  merchant ${plan.merchantId}  ${plan.amountFormatted} ${plan.symbol} / ${formatDuration(plan.period)}` +
            `  trial ${formatDuration(plan.trialPeriod)}  cap ${plan.maxCharges === 0n ? "none" : plan.maxCharges}` +
            `  backlog ${plan.maxBacklog}  ${plan.active ? "open" : "closed"}  token ${plan.token}`,
        );
      }
    },
  );
}
