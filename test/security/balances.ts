// Balance bookkeeping for the adversarial tests: every attack must leave every token balance where it was, so each test
// snapshots the balances of all parties before the attempt and compares them after it.
import { expect } from "chai";
import type { Addressable } from "ethers";

/** Anything with an ERC-20 `balanceOf` (BillingToken, test doubles). */
export interface BalanceSource {
  balanceOf(account: string): Promise<bigint>;
}

type Party = Addressable | string;

async function addressOf(party: Party): Promise<string> {
  return typeof party === "string" ? party : await party.getAddress();
}

/** Balances of `parties` in `token`, keyed by address. */
export async function snapshotBalances(token: BalanceSource, parties: Party[]): Promise<Map<string, bigint>> {
  const balances = new Map<string, bigint>();
  for (const party of parties) {
    const address = await addressOf(party);
    balances.set(address, await token.balanceOf(address));
  }
  return balances;
}

/**
 * Asserts that each party's balance changed by exactly `expected[address]` (0 when absent) since `before`.
 * Naming the party in the message makes a failure say who gained or lost.
 */
export async function expectBalanceChanges(
  token: BalanceSource,
  before: Map<string, bigint>,
  expected: Record<string, bigint> = {},
): Promise<void> {
  for (const [address, previous] of before) {
    const delta = (await token.balanceOf(address)) - previous;
    expect(delta, `balance change of ${address}`).to.equal(expected[address] ?? 0n);
  }
}

/** Runs `attempt` (which asserts its own failure) and then asserts that no balance of `parties` moved. */
export async function expectNoBalanceMoves(
  token: BalanceSource,
  parties: Party[],
  attempt: () => Promise<unknown>,
): Promise<void> {
  const before = await snapshotBalances(token, parties);
  await attempt();
  await expectBalanceChanges(token, before);
}
