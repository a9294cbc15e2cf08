import { task } from "hardhat/config";
import type { TaskDefinition } from "hardhat/types/tasks";

const billing = {
  name: "billing",
  description: "RecurringBilling address (default: the one Ignition deployed on this network)",
  defaultValue: "",
} as const;
const account = {
  name: "account",
  description: "Account to send from: an index into the network's accounts or one of their addresses",
  defaultValue: "0",
} as const;
const json = { name: "json", description: "Print the result as JSON" } as const;
const merchant = { name: "merchant", description: "Merchant id", defaultValue: "" } as const;
const fromBlock = {
  name: "fromBlock",
  description: "First block to read events from (default: the billing contract's creation block)",
  defaultValue: "",
} as const;

/** Merchant tasks: register, plans, subscriptions and revenue, without writing ethers scripts. */
export const merchantTasks: TaskDefinition[] = [
  task("merchant:register", "Register the account as a merchant")
    .addOption({ name: "beneficiary", description: "Where charges are paid (default: the account)", defaultValue: "" })
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/register.js"))
    .build(),
  task("merchant:beneficiary", "Change where a merchant's charges are paid")
    .addOption(merchant)
    .addOption({ name: "beneficiary", description: "The new address to pay", defaultValue: "" })
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/beneficiary.js"))
    .build(),
  task("merchant:pause", "Pause a merchant's billing (paused time does not count towards grace)")
    .addOption(merchant)
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/pause.js"))
    .build(),
  task("merchant:resume", "Resume a merchant's billing")
    .addOption(merchant)
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/resume.js"))
    .build(),
  task("plans:create", "Create a plan; its terms are copied into every subscription and never change")
    .addOption(merchant)
    .addOption({ name: "token", description: "ERC-20 the plan bills in", defaultValue: "" })
    .addOption({ name: "amount", description: "Price per period in token units, e.g. 9.99", defaultValue: "" })
    .addOption({ name: "period", description: "Billing period: seconds or e.g. 30d, 1w, 12h", defaultValue: "" })
    .addOption({
      name: "trial",
      description: "Free time before the first charge (0: charged at subscribe)",
      defaultValue: "0",
    })
    .addOption({ name: "cap", description: "Periods billed in total (0: until cancelled)", defaultValue: "0" })
    .addOption({
      name: "maxBacklog",
      description: "Most unpaid periods one charge may collect; older ones are forgiven (1-255)",
      defaultValue: "1",
    })
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/plans-create.js"))
    .build(),
  task("plans:list", "List plans with their terms and whether they are open")
    .addOption(merchant)
    .addOption(fromBlock)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/plans-list.js"))
    .build(),
  task("plans:close", "Close a plan to new subscriptions (its subscribers are still billed)")
    .addOption({ name: "plan", description: "Plan id", defaultValue: "" })
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/plans-close.js"))
    .build(),
  task("subscriptions:list", "List subscriptions by merchant, customer or status, with the next due time")
    .addOption(merchant)
    .addOption({ name: "customer", description: "Customer address", defaultValue: "" })
    .addOption({
      name: "status",
      description: "active, past-due, cancelled, lapsed or completed",
      defaultValue: "",
    })
    .addOption({
      name: "store",
      description: "Read from the keeper's PostgreSQL store (URL; default KEEPER_POSTGRES_URL) instead of the chain",
      defaultValue: "",
    })
    .addOption({ name: "limit", description: "Rows per page (1-1000)", defaultValue: "50" })
    .addOption({ name: "offset", description: "Rows to skip", defaultValue: "0" })
    .addOption(fromBlock)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/subscriptions-list.js"))
    .build(),
  task("subscriptions:cancel", "Cancel a subscription (as its customer or its merchant's admin)")
    .addOption({ name: "id", description: "Subscription id", defaultValue: "" })
    .addOption(fromBlock)
    .addOption(account)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/subscriptions-cancel.js"))
    .build(),
  task("revenue", "Revenue per merchant, plan and token over a time range (table, CSV or JSON)")
    .addOption(merchant)
    .addOption({
      name: "from",
      description: "Start (YYYY-MM-DD, ISO time or Unix seconds; default: 30 days before --to)",
      defaultValue: "",
    })
    .addOption({ name: "to", description: "End, exclusive (default: now)", defaultValue: "" })
    .addOption({ name: "format", description: "table, csv or json", defaultValue: "table" })
    .addOption(fromBlock)
    .addOption(billing)
    .addFlag(json)
    .setAction(() => import("./actions/revenue.js"))
    .build(),
];
