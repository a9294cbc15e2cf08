import { EthSafeSignature, EthSafeTransaction, type ContractNetworksConfig } from "@safe-global/protocol-kit";
import { ethers } from "ethers";

import { type AccountSigner, type ChainProvider, signerAddress, toEthersProvider } from "./chain.js";
import { SafeTaskError } from "./errors.js";
import {
  checkProposalIntegrity,
  computeSafeTxHash,
  PROPOSAL_VERSION,
  type GuardianSummary,
  type Proposal,
  type ProposalSummary,
  type RotationSummary,
} from "./proposal-file.js";
import {
  checkGuardianChange,
  checkRotationApplies,
  describeGuardianChange,
  describeRotation,
  encodeGuardianChange,
  encodeRotation,
  type GuardianChange,
  openRegistry,
  readRegistryAdmins,
  type Rotation,
} from "./registry.js";
import { openSafe, readSafeState, type SafeState } from "./safe-account.js";
import { safeTxTypedData, verifiedSafeTxHashes } from "./safe-tx-hash.js";
import { signSafeTxTypedData } from "./typed-data-signer.js";

/** Where a proposal's Safe lives. */
export interface ChainContext {
  provider: ChainProvider;
  /** protocol-kit's addresses of the Safe contracts; needed on a local chain only. */
  contractNetworks?: ContractNetworksConfig;
}

/** The registry a proposal is for, and the Safe that must own it. */
export interface RegistryTarget {
  registryAddress: string;
  /** The Safe that owns the registry; defaults to the registry's owner, and must be it. */
  safeAddress?: string;
}

/** Inputs of {@link createProposal}. */
export interface CreateProposalOptions extends ChainContext, RegistryTarget, Rotation {}

/** Inputs of {@link createGuardianProposal}. */
export interface CreateGuardianProposalOptions extends ChainContext, RegistryTarget {
  /** The new guardian; the zero address disables the fast revoke path. */
  guardian: string;
}

/** A registry checked to be owned by a Safe, read at the time a proposal is made. */
interface OwnedRegistry {
  chainId: bigint;
  registry: ethers.Contract;
  safeAddress: string;
  safeState: SafeState;
}

/** Opens the registry and its owner Safe, checking that the Safe (given or the owner) is a Safe and owns it. */
async function openOwnedRegistry(options: ChainContext & RegistryTarget): Promise<OwnedRegistry> {
  const provider = toEthersProvider(options.provider);
  const { chainId } = await provider.getNetwork();
  const registry = await openRegistry(provider, options.registryAddress);
  const owner = ethers.getAddress(await registry.owner());
  const safeAddress = options.safeAddress ?? owner;
  const safeState = await readSafeState(provider, safeAddress);
  if (owner !== safeAddress) {
    throw new SafeTaskError(
      `Safe ${safeAddress} does not own registry ${options.registryAddress} (its owner is ${owner})`,
    );
  }
  return { chainId, registry, safeAddress, safeState };
}

/**
 * Builds a proposal to rotate the registry's operators through its owner Safe: one Safe transaction calling
 * `rotateOperators(remove, add)` at the Safe's current nonce, with no signatures yet. Nothing is sent to the chain.
 *
 * @throws SafeTaskError when the Safe is not a Safe or does not own the registry, an address is in both lists, a
 *   removed address is not an operator, or an added one already is.
 */
export async function createProposal(options: CreateProposalOptions): Promise<Proposal & { summary: RotationSummary }> {
  const target = await openOwnedRegistry(options);
  const rotation: Rotation = { remove: options.remove, add: options.add };
  const both = rotation.add.find((address) => rotation.remove.includes(address));
  if (both !== undefined) throw new SafeTaskError(`${both} is in both --add and --remove`);
  checkRotationApplies(await target.registry.operators(), rotation, await readRegistryAdmins(target.registry));
  return buildProposal(options, target, encodeRotation(rotation), {
    action: "rotateOperators",
    ...rotation,
    description: describeRotation(rotation),
  });
}

/**
 * Builds a proposal to set the registry's guardian through its owner Safe: one Safe transaction calling
 * `setGuardian(guardian)` at the Safe's current nonce, with no signatures yet. The proposal records the current
 * guardian, and signing or executing it requires that it still is. Nothing is sent to the chain.
 *
 * @throws SafeTaskError when the Safe is not a Safe or does not own the registry, or the change is refused by
 *   `checkGuardianChange` (no change, the new guardian is an operator or the owner).
 */
export async function createGuardianProposal(
  options: CreateGuardianProposalOptions,
): Promise<Proposal & { summary: GuardianSummary }> {
  const target = await openOwnedRegistry(options);
  const { registry, safeAddress } = target;
  const change: GuardianChange = {
    previousGuardian: ethers.getAddress(await registry.guardian()),
    guardian: ethers.getAddress(options.guardian),
  };
  const operators = (await registry.operators()) as string[];
  checkGuardianChange({ owner: safeAddress, guardian: change.previousGuardian, operators }, change);
  return buildProposal(options, target, encodeGuardianChange(change.guardian), {
    action: "setGuardian",
    ...change,
    description: describeGuardianChange(change),
  });
}

/** The proposal for one call of the registry by its owner Safe, at the Safe's current nonce. */
async function buildProposal<SummaryT extends ProposalSummary>(
  context: ChainContext,
  { chainId, registry, safeAddress, safeState }: OwnedRegistry,
  data: string,
  summary: SummaryT,
): Promise<Proposal & { summary: SummaryT }> {
  const registryAddress = ethers.getAddress(await registry.getAddress());
  const safe = await openSafe({ ...context, safeAddress });
  const safeTransaction = await safe.createTransaction({
    transactions: [{ to: registryAddress, value: "0", data, operation: 0 }],
    options: {
      nonce: safeState.nonce,
      safeTxGas: "0",
      baseGas: "0",
      gasPrice: "0",
      gasToken: ethers.ZeroAddress,
      refundReceiver: ethers.ZeroAddress,
    },
  });
  const fields = safeTransaction.data;
  // Field order of the EIP-712 SafeTx type, so the file reads like what is signed.
  const tx = {
    to: ethers.getAddress(fields.to),
    value: fields.value,
    data: fields.data,
    operation: Number(fields.operation),
    safeTxGas: fields.safeTxGas,
    baseGas: fields.baseGas,
    gasPrice: fields.gasPrice,
    gasToken: fields.gasToken,
    refundReceiver: fields.refundReceiver,
    nonce: Number(fields.nonce),
  };
  const safeTxHash = computeSafeTxHash(chainId, safeAddress, tx);
  // Two independent computations (here and the Safe contract's own getTransactionHash) must agree.
  const onChainHash = await safe.getTransactionHash(safeTransaction);
  if (onChainHash.toLowerCase() !== safeTxHash) {
    throw new Error(`Safe transaction hash disagreement: computed ${safeTxHash}, the Safe says ${onChainHash}`);
  }
  const proposal: Proposal & { summary: SummaryT } = {
    version: PROPOSAL_VERSION,
    chainId: chainId.toString(),
    safe: safeAddress,
    registry: registryAddress,
    safeNonce: safeState.nonce,
    safeTxHash,
    safeTransaction: tx,
    summary,
    signatures: [],
    createdAt: new Date().toISOString(),
  };
  checkProposalIntegrity(proposal);
  return proposal;
}

/**
 * Checks a proposal against the chain: same chain, the Safe is a Safe at the proposal's nonce, every signer is an
 * owner, the Safe owns the registry, and the change still applies: a rotation to the current operators, a guardian
 * change to the guardian it expects to replace.
 *
 * @param provider The node.
 * @param proposal A proposal that passed `checkProposalIntegrity` (as every one from `readProposal` did).
 * @returns The Safe's current state.
 * @throws SafeTaskError naming the first check that fails.
 */
export async function checkProposalOnChain(provider: ChainProvider, proposal: Proposal): Promise<SafeState> {
  const ethersProvider = toEthersProvider(provider);
  const { chainId } = await ethersProvider.getNetwork();
  if (chainId.toString() !== proposal.chainId) {
    throw new SafeTaskError(`the proposal is for chain ${proposal.chainId} but the network is chain ${chainId}`);
  }
  const state = await readSafeState(ethersProvider, proposal.safe);
  if (proposal.safeNonce < state.nonce) {
    throw new SafeTaskError(
      `Safe nonce ${proposal.safeNonce} was already used (the Safe is at nonce ${state.nonce}): ` +
        "this proposal was executed or replaced; create a new one",
    );
  }
  if (proposal.safeNonce > state.nonce) {
    throw new SafeTaskError(
      `the proposal is for Safe nonce ${proposal.safeNonce} but the Safe is at nonce ${state.nonce}: ` +
        "execute the earlier Safe transactions first, or create a new proposal",
    );
  }
  for (const { signer } of proposal.signatures) {
    if (!state.owners.includes(signer)) {
      throw new SafeTaskError(`${signer} signed the proposal but is not an owner of Safe ${proposal.safe}`);
    }
  }
  const registry = await openRegistry(ethersProvider, proposal.registry);
  const owner = ethers.getAddress(await registry.owner());
  if (owner !== proposal.safe) {
    throw new SafeTaskError(
      `Safe ${proposal.safe} no longer owns registry ${proposal.registry} (its owner is ${owner})`,
    );
  }
  const { summary } = proposal;
  if (summary.action === "rotateOperators") {
    checkRotationApplies(await registry.operators(), summary, await readRegistryAdmins(registry));
  } else {
    checkGuardianChange({ owner, guardian: await registry.guardian(), operators: await registry.operators() }, summary);
  }
  return state;
}

/** Inputs of {@link signProposal}. */
export interface SignProposalOptions<ProposalT extends Proposal = Proposal> extends ChainContext {
  proposal: ProposalT;
  /** A Safe owner. */
  signer: AccountSigner;
}

/**
 * Signs `proposal` as one owner with `eth_signTypedData_v4` (EIP-712) through the network's accounts (a node account,
 * a Ledger, a remote signer), or with a private key in tests and CI, and returns it with that signature added; the
 * input is not modified. The three hashes are checked against protocol-kit and the Safe first. Nothing is sent to the
 * chain.
 *
 * @throws SafeTaskError when the proposal fails {@link checkProposalOnChain}, the signer is not an owner or has already
 *   signed.
 */
export async function signProposal<ProposalT extends Proposal>(
  options: SignProposalOptions<ProposalT>,
): Promise<ProposalT> {
  const { proposal, signer } = options;
  checkProposalIntegrity(proposal);
  const state = await checkProposalOnChain(options.provider, proposal);
  const owner = signerAddress(signer);
  if (!state.owners.includes(owner)) {
    throw new SafeTaskError(`${owner} is not an owner of Safe ${proposal.safe} (owners: ${state.owners.join(", ")})`);
  }
  if (proposal.signatures.some((signature) => signature.signer === owner)) {
    throw new SafeTaskError(`${owner} has already signed this proposal`);
  }
  // The hashes the owner's device will show: computed here, checked against protocol-kit and the Safe contract itself.
  const hashes = verifiedSafeTxHashes(BigInt(proposal.chainId), proposal.safe, proposal.safeTransaction, state.version);
  const safe = await openSafe({ ...options, safeAddress: proposal.safe });
  const onChainHash = await safe.getTransactionHash(new EthSafeTransaction(proposal.safeTransaction));
  if (hashes.safeTxHash !== proposal.safeTxHash.toLowerCase() || onChainHash.toLowerCase() !== hashes.safeTxHash) {
    throw new SafeTaskError(
      `tampered proposal: the Safe hashes this transaction to ${onChainHash}, not ${proposal.safeTxHash}`,
    );
  }
  const typedData = safeTxTypedData(BigInt(proposal.chainId), proposal.safe, proposal.safeTransaction);
  const data = await signSafeTxTypedData(options.provider, signer, typedData, hashes.safeTxHash);
  const withSignature: ProposalT = {
    ...proposal,
    signatures: [...proposal.signatures, { signer: owner, data }],
  };
  // Only plain EIP-712 signatures are accepted, so each one can be re-checked offline by every later reader.
  checkProposalIntegrity(withSignature);
  return withSignature;
}

/** Inputs of {@link executeProposal}. */
export interface ExecuteProposalOptions extends ChainContext {
  proposal: Proposal;
  /** Any funded account: it pays the gas and gains no rights. */
  executor: AccountSigner;
}

/** The transaction that executed a proposal. */
export interface ExecutionResult {
  transactionHash: string;
  blockNumber: number;
  gasUsed: bigint;
}

/**
 * Executes a proposal carrying at least the Safe's threshold of owner signatures, as ONE Ethereum transaction
 * (`Safe.execTransaction` calling `rotateOperators` or `setGuardian`): every removal and addition of a rotation
 * applies together or not at all.
 *
 * @throws SafeTaskError when the proposal fails {@link checkProposalOnChain}, has too few signatures, or the Safe
 *   would reject it (checked by simulation before anything is sent).
 */
export async function executeProposal(options: ExecuteProposalOptions): Promise<ExecutionResult> {
  const { proposal } = options;
  checkProposalIntegrity(proposal);
  const state = await checkProposalOnChain(options.provider, proposal);
  if (proposal.signatures.length < state.threshold) {
    const by = proposal.signatures.map((signature) => signature.signer).join(", ") || "nobody";
    throw new SafeTaskError(
      `too few signatures: ${proposal.signatures.length} of the ${state.threshold} required by Safe ${proposal.safe} ` +
        `(signed by ${by})`,
    );
  }
  const safe = await openSafe({ ...options, signer: options.executor, safeAddress: proposal.safe });
  const transaction = new EthSafeTransaction(proposal.safeTransaction);
  for (const { signer, data } of proposal.signatures) transaction.addSignature(new EthSafeSignature(signer, data));
  let valid: boolean;
  try {
    valid = await safe.isValidTransaction(transaction);
  } catch (error) {
    throw new SafeTaskError(`the Safe would reject this transaction: ${(error as Error).message}`);
  }
  if (!valid) throw new SafeTaskError("the Safe would reject this transaction (simulation failed)");

  const result = await safe.executeTransaction(transaction);
  const receipt = await toEthersProvider(options.provider).waitForTransaction(result.hash);
  if (receipt === null || receipt.status !== 1) {
    throw new Error(`execution transaction ${result.hash} failed on chain`);
  }
  const executionSuccess = ethers.id("ExecutionSuccess(bytes32,uint256)");
  const succeeded = receipt.logs.some(
    (log) => ethers.getAddress(log.address) === proposal.safe && log.topics[0] === executionSuccess,
  );
  if (!succeeded) throw new Error(`transaction ${result.hash} did not execute the Safe transaction`);
  return { transactionHash: receipt.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
}
