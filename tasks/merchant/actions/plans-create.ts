import { ethers } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { parseAddress } from "../../safe/lib/addresses.js";
import { type CommonArgs, openBilling, resolveAccount, runMerchantTask } from "../lib/context.js";
import { MerchantTaskError } from "../lib/errors.js";
import { requireMerchantAdmin } from "../lib/merchant.js";
import { formatDuration, parseDuration, parseInteger, parseTokenAmount } from "../lib/parse.js";
import { tokenInfo } from "../lib/reads.js";
import { simulateAndSend } from "../lib/send.js";

interface Args extends CommonArgs {
  account: string;
  merchant: string;
  token: string;
  amount: string;
  period: string;
  trial: string;
  cap: string;
  maxBacklog: string;
}

/** `plans:create`: a plan whose terms are copied into every subscription and never change. */
export default async function createPlan(args: Args, hre: HardhatRuntimeEnvironment) {
  return runMerchantTask(
    args.json,
    async () => {
      const merchantId = parseInteger(args.merchant, "--merchant", 1n);
      if (args.token === "") throw new MerchantTaskError("--token is required: the ERC-20 the plan bills in");
      const token = parseAddress(args.token, "--token");
      if (args.amount === "") throw new MerchantTaskError("--amount is required: the price per period in token units");
      if (args.period === "") throw new MerchantTaskError("--period is required: e.g. 30d, 1w or seconds");
      const period = parseDuration(args.period, "--period", 60n);
      const trialPeriod = parseDuration(args.trial, "--trial");
      const maxCharges = parseInteger(args.cap, "--cap");
      const maxBacklog = parseInteger(args.maxBacklog, "--max-backlog", 1n, 255n);
      const context = await openBilling(hre, args.billing);
      if ((await context.ethers.provider.getCode(token)) === "0x") {
        throw new MerchantTaskError(`--token: no contract at ${token} on chain ${context.chainId}`);
      }
      const info = await tokenInfo(context, token);
      const amount = parseTokenAmount(args.amount, info.decimals, "--amount");
      const admin = await resolveAccount(context, args.account);
      await requireMerchantAdmin(context, merchantId, admin.address);
      const billing = context.billing.connect(admin);
      const terms = [merchantId, token, amount, period, trialPeriod, maxCharges, maxBacklog] as const;
      const receipt = await simulateAndSend(billing.interface, "create the plan", {
        staticCall: () => billing.createPlan.staticCall(...terms),
        send: () => billing.createPlan(...terms),
      });
      const event = receipt.logs
        .map((log) => billing.interface.parseLog(log))
        .find((parsed) => parsed?.name === "PlanCreated");
      if (event == null) throw new Error("the plan creation emitted no PlanCreated event");
      return {
        planId: event.args.planId as bigint,
        merchantId,
        token,
        symbol: info.symbol,
        amount,
        amountFormatted: ethers.formatUnits(amount, info.decimals),
        period,
        trialPeriod,
        maxCharges,
        maxBacklog,
        transactionHash: receipt.hash,
      };
    },
    (plan) =>
      console.log(
        `Created plan ${plan.planId} for merchant ${plan.merchantId}: ${plan.amountFormatted} ${plan.symbol} every ${formatDuration(plan.period)}` +
          `${plan.trialPeriod > 0n ? `, ${formatDuration(plan.trialPeriod)} trial` : ""}` +
          `${plan.maxCharges > 0n ? `, ${plan.maxCharges} periods` : ", until cancelled"}` +
          ` (transaction ${plan.transactionHash}).`,
      ),
  );
}
