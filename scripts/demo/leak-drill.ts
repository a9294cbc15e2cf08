// The leak drill: an attacker holding the operator key tries every abuse of the threat model (DESIGN.md) and each one
// must fail on-chain with the contract's own error, leaving every token balance where it was.
import { ethers } from "ethers";

import type { Narrator } from "./ui.js";

/** A subscription as the contract addresses it (`RecurringBilling.SubscriptionRef`). */
export interface SubscriptionRef {
  id: bigint;
  customer: string;
  amount: bigint;
  token: string;
}

export interface DrillTargets {
  attacker: ethers.Signer;
  billing: ethers.Contract;
  registry: ethers.Contract;
  token: ethers.Contract;
  merchantId: bigint;
  planId: bigint;
  /** A subscription that is active but not due. */
  active: SubscriptionRef;
  /** A subscription its customer cancelled. */
  cancelled: SubscriptionRef;
  customer: string;
  /** Accounts whose token balances must not move. */
  watched: string[];
}

interface Attempt {
  what: string;
  expected: string;
  run: () => Promise<unknown>;
}

/** Decodes a revert into the custom error's name using every contract's ABI. */
function revertName(error: unknown, interfaces: ethers.Interface[]): string {
  const data =
    (error as { data?: string }).data ?? (error as { info?: { error?: { data?: string } } }).info?.error?.data;
  if (typeof data === "string" && data.length >= 10) {
    for (const iface of interfaces) {
      const parsed = iface.parseError(data);
      if (parsed) return parsed.name;
    }
  }
  return `unexpected failure: ${(error as Error).message.split("\n")[0]}`;
}

/** Runs the drill and records one check per attempt plus the balance check. */
export async function runLeakDrill(t: DrillTargets, narrator: Narrator): Promise<void> {
  const billing = t.billing.connect(t.attacker) as ethers.Contract;
  const registry = t.registry.connect(t.attacker) as ethers.Contract;
  const token = t.token.connect(t.attacker) as ethers.Contract;
  const attacker = await t.attacker.getAddress();
  const interfaces = [t.billing.interface, t.registry.interface, t.token.interface];

  const attempts: Attempt[] = [
    {
      what: "charge a subscription before it is due",
      expected: "BillingNotDue",
      run: () => billing.charge(t.active),
    },
    {
      what: "charge a cancelled subscription",
      expected: "BillingSubscriptionNotActive",
      run: () => billing.charge(t.cancelled),
    },
    {
      what: "charge a subscription more than its agreed amount",
      expected: "BillingUnknownSubscription",
      run: () => billing.charge({ ...t.active, amount: t.active.amount * 10n }),
    },
    {
      what: "redirect the merchant's revenue to itself",
      expected: "BillingNotMerchantAdmin",
      run: () => billing.setBeneficiary(t.merchantId, attacker),
    },
    {
      what: "create a pricier plan for the merchant",
      expected: "BillingNotMerchantAdmin",
      run: () => billing.createPlan(t.merchantId, t.token.target, 10n ** 24n, 60, 0, 0, 1),
    },
    {
      what: "close the merchant's plan",
      expected: "BillingNotMerchantAdmin",
      run: () => billing.setPlanActive(t.planId, false),
    },
    {
      what: "cancel a customer's subscription",
      expected: "BillingUnauthorizedCanceller",
      run: () => billing.cancel(t.active),
    },
    {
      what: "pause the merchant (to unpause later)",
      expected: "BillingNotMerchantAdmin",
      run: () => billing.setMerchantPaused(t.merchantId, true),
    },
    { what: "pause billing globally", expected: "OwnableUnauthorizedAccount", run: () => billing.pause() },
    { what: "unpause billing globally", expected: "OwnableUnauthorizedAccount", run: () => billing.unpause() },
    {
      what: "add a second operator key of its own",
      expected: "OwnableUnauthorizedAccount",
      run: () => registry.rotateOperators([], [ethers.Wallet.createRandom().address]),
    },
    {
      what: "make itself guardian of the registry",
      expected: "OwnableUnauthorizedAccount",
      run: () => registry.setGuardian(attacker),
    },
    {
      what: "pull a customer's tokens directly",
      expected: "ERC20InsufficientAllowance",
      run: () => token.transferFrom(t.customer, attacker, 1n),
    },
  ];

  const before = await Promise.all(t.watched.map((account) => t.token.balanceOf(account) as Promise<bigint>));
  for (const attempt of attempts) {
    let outcome: string;
    try {
      await (await (attempt.run() as Promise<ethers.ContractTransactionResponse>)).wait();
      outcome = "succeeded";
    } catch (error) {
      outcome = revertName(error, interfaces);
    }
    narrator.check(`attacker cannot ${attempt.what}`, outcome === attempt.expected, outcome);
  }

  // A batch of not-due and cancelled items (one repeated) goes through but charges nothing: each item is skipped.
  const receipt = await (await billing.chargeMany([t.active, t.active, t.cancelled])).wait();
  const names = (receipt?.logs ?? []).map((log: ethers.Log) => t.billing.interface.parseLog(log)?.name);
  narrator.check(
    "attacker's chargeMany of not-due, repeated and cancelled ids charges nothing",
    names.length === 3 && names.every((name: string | undefined) => name === "ChargeSkipped"),
    `${names.length} ChargeSkipped events, ${names.filter((n: string | undefined) => n === "Charged").length} Charged`,
  );

  const after = await Promise.all(t.watched.map((account) => t.token.balanceOf(account) as Promise<bigint>));
  const moved = t.watched.filter((_, i) => before[i] !== after[i]);
  narrator.check(
    "no token balance moved during the drill",
    moved.length === 0,
    `${t.watched.length} accounts watched${moved.length ? `, moved: ${moved.join(", ")}` : ""}`,
  );
}
