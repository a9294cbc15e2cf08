// Fixtures for the Safe admin tasks. They use `network.getOrCreate()`, the same cached connection that the tasks use
// when run through `hre.tasks`, so a test can set up a Safe here and drive it through the CLI wiring.
import { expect } from "chai";
import { network } from "hardhat";

import { deployLocalSafe } from "../../tasks/safe/lib/local-safe.js";

export const connection = await network.getOrCreate();
export const { ethers, networkHelpers, provider } = connection;

const DAY = 24n * 60n * 60n;
export const AMOUNT = ethers.parseUnits("10", 18);
export const PERIOD = 30n * DAY;

/** The private keys of the Safe's three owners, one per person; each test signer object gets exactly one. */
export const OWNER_KEYS = ["alice", "bob", "carol"].map((name) => ethers.id(`safe owner ${name}`));
/** The owners as separate signer objects, each holding only its own key (as on their own machines). */
export const [alice, bob, carol] = OWNER_KEYS.map((privateKey) => ({ privateKey }));

/**
 * A 2-of-3 Safe (Safe 1.5.0 contracts from `@safe-global/safe-smart-account`, owners holding {@link OWNER_KEYS}) that
 * owns a RecurringBilling contract and the OperatorRegistry it created, with one `operator`; a customer's subscription
 * is due, so whoever is an operator can charge it right now.
 */
export async function safeOwnedRegistryFixture() {
  return registryOwnedBySafe(OWNER_KEYS.map((key) => new ethers.Wallet(key).address));
}

/**
 * {@link safeOwnedRegistryFixture} with node accounts 10, 11 and 12 as the Safe's owners, so they sign with
 * `eth_signTypedData_v4` through the network (as a Ledger or a remote signer does) and no key is handed over.
 */
export async function nodeOwnedRegistryFixture() {
  const signers = await ethers.getSigners();
  const ownerSigners = signers.slice(10, 13);
  const fixture = await registryOwnedBySafe(ownerSigners.map((signer) => signer.address));
  return { ...fixture, ownerSigners };
}

async function registryOwnedBySafe(owners: string[]) {
  const [deployer, operator, newOperator, merchantAdmin, beneficiary, customer, executor, guardian, outsider] =
    await ethers.getSigners();
  const localSafe = await deployLocalSafe({ deployer, owners, threshold: 2 });
  // Contracts v2: the billing contract creates the registry, owned by the same Safe.
  const billing = await ethers.deployContract("RecurringBilling", [
    localSafe.safeAddress,
    [operator.address],
    ethers.ZeroAddress,
    7n * DAY,
  ]);
  const registryAddress = await billing.registry();
  const registry = await ethers.getContractAt("OperatorRegistry", registryAddress);
  const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", deployer.address]);

  await billing.connect(merchantAdmin).registerMerchant(beneficiary.address);
  const merchantId = await billing.merchantCount();
  await billing.connect(merchantAdmin).createPlan(merchantId, await token.getAddress(), AMOUNT, PERIOD, 0n, 0n, 1n);
  await token.mint(customer.address, AMOUNT * 10n);
  await token.connect(customer).approve(await billing.getAddress(), ethers.MaxUint256);
  await billing.connect(customer).subscribe(await billing.planCount());
  const subscriptionId = await billing.subscriptionCount();
  /** The subscription as the billing contract addresses it (contracts v2). */
  const subscription = {
    id: subscriptionId,
    customer: customer.address,
    amount: AMOUNT,
    token: await token.getAddress(),
  };
  await networkHelpers.time.increaseTo((await billing.getSubscription(subscription)).nextChargeAt);

  return {
    localSafe,
    safeAddress: localSafe.safeAddress,
    contractNetworks: localSafe.contractNetworks,
    registry,
    registryAddress,
    billing,
    token,
    subscriptionId,
    subscription,
    owners,
    operator,
    newOperator,
    executor,
    guardian,
    outsider,
  };
}

/**
 * Runs `action`, expecting it to fail with a message matching `message`, and checks that no block was mined
 * meanwhile: with automining, that proves no transaction reached the chain.
 */
export async function expectRejectedWithoutTransaction(action: () => Promise<unknown>, message: RegExp): Promise<void> {
  const before = await ethers.provider.getBlockNumber();
  let error: unknown;
  try {
    await action();
  } catch (caught) {
    error = caught;
  }
  expect(error, "expected the call to fail").to.be.instanceOf(Error);
  expect((error as Error).message).to.match(message);
  expect(await ethers.provider.getBlockNumber(), "a transaction was sent").to.equal(before);
}

/** {@link safeOwnedRegistryFixture}, with the connection context and executor the proposal functions take. */
export async function safeProposalSetup() {
  const fixture = await networkHelpers.loadFixture(safeOwnedRegistryFixture);
  const context = { provider, contractNetworks: fixture.contractNetworks };
  const executor = { nodeAccount: fixture.executor.address };
  return { fixture, context, executor };
}
