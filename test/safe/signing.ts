import { expect } from "chai";

import type { Eip1193Provider } from "@safe-global/protocol-kit";

import { createProposal, executeProposal, signProposal } from "../../tasks/safe/lib/proposal.js";
import {
  computeSafeTxHashes,
  protocolKitSafeTxHashes,
  SAFE_TX_TYPES,
  safeTxTypedData,
  verifiedSafeTxHashes,
} from "../../tasks/safe/lib/safe-tx-hash.js";
import {
  ethers,
  expectRejectedWithoutTransaction,
  networkHelpers,
  nodeOwnedRegistryFixture,
  provider,
} from "./fixtures.js";

type Request = { method: string; params?: unknown[] };

/** The network's provider, recording every method asked and letting a test change what comes back. */
function recordingProvider(rewrite: (request: Request, forward: (r: Request) => Promise<unknown>) => Promise<unknown>) {
  const methods: string[] = [];
  const forward = (request: Request) => provider.request(request);
  const wrapped: Eip1193Provider = {
    request: async (request: Request) => {
      methods.push(request.method);
      return rewrite(request, forward);
    },
  } as Eip1193Provider;
  return { wrapped, methods };
}

async function setup() {
  const fixture = await networkHelpers.loadFixture(nodeOwnedRegistryFixture);
  const context = { provider, contractNetworks: fixture.contractNetworks };
  const proposal = await createProposal({
    ...context,
    registryAddress: fixture.registryAddress,
    remove: [fixture.operator.address],
    add: [fixture.newOperator.address],
  });
  const [first, second, third] = fixture.owners.map((nodeAccount) => ({ nodeAccount }));
  return { ...fixture, context, proposal, first, second, third };
}

/** EIP-712 by hand, from the Safe contract's own type hashes: what a careful owner computes with a second tool. */
function referenceHashes(chainId: bigint, safe: string, tx: Parameters<typeof computeSafeTxHashes>[2]) {
  const coder = ethers.AbiCoder.defaultAbiCoder();
  const DOMAIN_TYPEHASH = "0x47e79534a245952e8b16893a336b85a3d9ea9fa8c573f3d803afb92a79469218";
  const SAFE_TX_TYPEHASH = "0xbb8310d486368db6bd6f849402fdd73ad53d316b5a4b2644ad6efe0f941286d8";
  expect(ethers.id("EIP712Domain(uint256 chainId,address verifyingContract)")).to.equal(DOMAIN_TYPEHASH);
  const domainHash = ethers.keccak256(
    coder.encode(["bytes32", "uint256", "address"], [DOMAIN_TYPEHASH, chainId, safe]),
  );
  const messageHash = ethers.keccak256(
    coder.encode(
      [
        "bytes32",
        "address",
        "uint256",
        "bytes32",
        "uint8",
        "uint256",
        "uint256",
        "uint256",
        "address",
        "address",
        "uint256",
      ],
      [
        SAFE_TX_TYPEHASH,
        tx.to,
        tx.value,
        ethers.keccak256(tx.data),
        tx.operation,
        tx.safeTxGas,
        tx.baseGas,
        tx.gasPrice,
        tx.gasToken,
        tx.refundReceiver,
        tx.nonce,
      ],
    ),
  );
  const safeTxHash = ethers.keccak256(ethers.concat(["0x1901", domainHash, messageHash]));
  return { domainHash, messageHash, safeTxHash };
}

describe("Safe transaction hashes and signing through the network's accounts", function () {
  describe("the three hashes", function () {
    it("equal a reference EIP-712 computation, protocol-kit's and the Safe contract's", async function () {
      const { proposal, safeAddress } = await setup();
      const tx = proposal.safeTransaction;
      const ours = computeSafeTxHashes(31337n, safeAddress, tx);
      expect(ours).to.deep.equal(referenceHashes(31337n, safeAddress, tx));
      expect(protocolKitSafeTxHashes(31337n, safeAddress, tx, "1.5.0")).to.deep.equal(ours);
      expect(verifiedSafeTxHashes(31337n, safeAddress, tx, "1.5.0")).to.deep.equal(ours);
      expect(ours.safeTxHash).to.equal(proposal.safeTxHash);

      const safe = new ethers.Contract(
        safeAddress,
        [
          "function domainSeparator() view returns (bytes32)",
          "function SAFE_TX_TYPEHASH() view returns (bytes32)",
          "function getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256) view returns (bytes32)",
        ],
        ethers.provider,
      );
      expect(await safe.domainSeparator()).to.equal(ours.domainHash);
      const args = [tx.to, tx.value, tx.data, tx.operation, tx.safeTxGas, tx.baseGas, tx.gasPrice, tx.gasToken];
      expect(await safe.getTransactionHash(...args, tx.refundReceiver, tx.nonce)).to.equal(ours.safeTxHash);
    });

    it("refuses to go on when protocol-kit computes another hash", async function () {
      const { proposal, safeAddress } = await setup();
      // Before Safe 1.3 the domain had no chain id: protocol-kit's safeTxHash then differs, and signing must stop.
      expect(() => verifiedSafeTxHashes(31337n, safeAddress, proposal.safeTransaction, "1.2.0")).to.throw(
        /^hash disagreement: safeTxHash is 0x[0-9a-f]{64} here but 0x[0-9a-f]{64} by protocol-kit \(Safe 1\.2\.0\); do not sign$/,
      );
    });

    it("gives eth_signTypedData_v4 typed data that hashes to the safeTxHash", async function () {
      const { proposal, safeAddress } = await setup();
      const typedData = safeTxTypedData(31337n, safeAddress, proposal.safeTransaction);
      expect(typedData.primaryType).to.equal("SafeTx");
      expect(typedData.types.SafeTx).to.deep.equal(SAFE_TX_TYPES.SafeTx);
      const { EIP712Domain: _domain, ...types } = typedData.types;
      expect(ethers.TypedDataEncoder.hash(typedData.domain, types, typedData.message)).to.equal(proposal.safeTxHash);
      // JSON only: what goes over the wire to a node, a Ledger or a remote signer.
      expect(JSON.parse(JSON.stringify(typedData))).to.deep.equal(typedData);
    });
  });

  describe("signProposal with node accounts", function () {
    it("two owners sign with eth_signTypedData_v4 (never eth_sign) and the 2-of-3 Safe executes", async function () {
      const { context, proposal, first, third, executor, registry, newOperator, billing, operator } = await setup();
      const { wrapped, methods } = recordingProvider((request, forward) => forward(request));
      let signed = await signProposal({ ...context, provider: wrapped, proposal, signer: first });
      signed = await signProposal({ ...context, provider: wrapped, proposal: signed, signer: third });
      expect(methods.filter((method) => method === "eth_signTypedData_v4")).to.have.length(2);
      expect(methods).not.to.include.members(["eth_sign", "personal_sign", "eth_signTypedData"]);
      for (const [index, { signer, data }] of signed.signatures.entries()) {
        expect(signer).to.equal([first, third][index].nodeAccount);
        expect(ethers.recoverAddress(signed.safeTxHash, data)).to.equal(signer);
        expect(Number(`0x${data.slice(-2)}`)).to.be.oneOf([27, 28]);
      }

      await executeProposal({ ...context, proposal: signed, executor: { nodeAccount: executor.address } });
      expect(await registry.operators()).to.deep.equal([newOperator.address]);
      expect(await billing.isOperator(operator.address)).to.equal(false);
      expect(await billing.isOperator(newOperator.address)).to.equal(true);
    });

    it("accepts a signer that answers with v of 0 or 1 (as a Ledger does), stored as 27 or 28", async function () {
      const { context, proposal, second } = await setup();
      const { wrapped } = recordingProvider(async (request, forward) => {
        const answer = await forward(request);
        if (request.method !== "eth_signTypedData_v4") return answer;
        const v = Number(`0x${(answer as string).slice(-2)}`) - 27;
        return `${(answer as string).slice(0, -2)}0${v}`;
      });
      const signed = await signProposal({ ...context, provider: wrapped, proposal, signer: second });
      const { data } = signed.signatures[0];
      expect(Number(`0x${data.slice(-2)}`)).to.be.oneOf([27, 28]);
      expect(ethers.recoverAddress(signed.safeTxHash, data)).to.equal(second.nodeAccount);
    });

    it("refuses a signature made by another account than the owner asked", async function () {
      const { context, proposal, first, outsider } = await setup();
      const { wrapped } = recordingProvider((request, forward) =>
        request.method === "eth_signTypedData_v4"
          ? forward({ ...request, params: [outsider.address, ...(request.params ?? []).slice(1)] })
          : forward(request),
      );
      await expectRejectedWithoutTransaction(
        () => signProposal({ ...context, provider: wrapped, proposal, signer: first }),
        new RegExp(
          `^the signature returned for ${first.nodeAccount} was made by ${outsider.address}: the signer signed ` +
            "something else; nothing written$",
        ),
      );
    });

    it("reports an account that refuses to sign", async function () {
      const { context, proposal, first } = await setup();
      const { wrapped } = recordingProvider((request, forward) => {
        if (request.method === "eth_signTypedData_v4") throw new Error("user rejected the request on the device");
        return forward(request);
      });
      await expectRejectedWithoutTransaction(
        () => signProposal({ ...context, provider: wrapped, proposal, signer: first }),
        new RegExp(
          `^${first.nodeAccount} did not sign \\(eth_signTypedData_v4 failed\\): .*user rejected the request on the device`,
        ),
      );
    });

    it("refuses a node account that is not an owner before asking it to sign", async function () {
      const { context, proposal, outsider } = await setup();
      const { wrapped, methods } = recordingProvider((request, forward) => forward(request));
      await expectRejectedWithoutTransaction(
        () => signProposal({ ...context, provider: wrapped, proposal, signer: { nodeAccount: outsider.address } }),
        new RegExp(`^${outsider.address} is not an owner of Safe`),
      );
      expect(methods).not.to.include("eth_signTypedData_v4");
    });
  });
});
