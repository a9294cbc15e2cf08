// operators:send-to-service against a local stand-in for the Safe Transaction Service: an HTTP server on port 0 that
// records what it is sent. No real service runs here, so this checks the requests, not the service's answers.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";

import { expect } from "chai";

import { ethers, OWNER_KEYS } from "./fixtures.js";
import { runTask, taskSetup } from "./task-runner.js";

interface Received {
  method: string;
  url: string;
  body: Record<string, unknown>;
}

/** A stand-in service: answers every request with `status` and records it. */
async function standInService(status = 201, answer: unknown = {}) {
  const received: Received[] = [];
  const server: Server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => {
      received.push({
        method: request.method ?? "",
        url: request.url ?? "",
        body: text === "" ? {} : JSON.parse(text),
      });
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { url: `http://127.0.0.1:${port}/api`, received, close };
}

/** A rotation proposal signed by `signers` (indexes into the fixture's owner keys). */
async function signedProposal(...signers: number[]) {
  const fixture = await taskSetup();
  const { registryAddress, operator, newOperator, file, contracts } = fixture;
  await runTask("operators:propose", {
    registry: registryAddress,
    remove: operator.address,
    add: newOperator.address,
    file,
    contracts,
  });
  for (const index of signers) {
    process.env.TEST_OWNER_KEY = OWNER_KEYS[index];
    const signed = await runTask("operators:sign", { file, keyVar: "TEST_OWNER_KEY", contracts, yes: true });
    expect(signed.success, signed.error?.message).to.equal(true);
  }
  delete process.env.TEST_OWNER_KEY;
  return fixture;
}

describe("operators:send-to-service (against a local stand-in service)", function () {
  afterEach(function () {
    delete process.env.SAFE_TX_SERVICE_URL;
  });

  it("proposes the transaction with the first owner's signature, then confirms with the others", async function () {
    const { file, safeAddress, owners } = await signedProposal(0, 2);
    const proposal = JSON.parse(await readFile(file, "utf8")) as {
      safeTxHash: string;
      safeTransaction: Record<string, unknown>;
      signatures: { signer: string; data: string }[];
    };
    const service = await standInService();
    try {
      const before = await ethers.provider.getBlockNumber();
      const result = await runTask("operators:send-to-service", { file, serviceUrl: service.url, json: true });
      expect(result.success, result.error?.message).to.equal(true);
      expect(JSON.parse(result.stdout)).to.deep.equal({
        serviceUrl: service.url,
        safeTxHash: proposal.safeTxHash,
        proposedBy: owners[0],
        confirmedBy: [owners[2]],
      });
      expect(service.received.map(({ method, url }) => `${method} ${url}`)).to.deep.equal([
        `POST /api/v2/safes/${safeAddress}/multisig-transactions/`,
        `POST /api/v1/multisig-transactions/${proposal.safeTxHash}/confirmations/`,
      ]);
      expect(service.received[0].body).to.deep.equal({
        ...proposal.safeTransaction,
        contractTransactionHash: proposal.safeTxHash,
        sender: owners[0],
        signature: proposal.signatures[0].data,
        origin: "recurring-billing operators:send-to-service",
      });
      expect(service.received[1].body).to.deep.equal({ signature: proposal.signatures[1].data });
      expect(await ethers.provider.getBlockNumber()).to.equal(before);
    } finally {
      await service.close();
    }
  });

  it("takes the URL from the configuration variable SAFE_TX_SERVICE_URL", async function () {
    const { file } = await signedProposal(1);
    const service = await standInService();
    try {
      process.env.SAFE_TX_SERVICE_URL = service.url;
      const result = await runTask("operators:send-to-service", { file });
      expect(result.success, result.error?.message).to.equal(true);
      expect(service.received).to.have.length(1);
    } finally {
      await service.close();
    }
  });

  it("refuses an unsigned proposal, a missing or bad URL, and reports the service's refusal in one line", async function () {
    const unsigned = await signedProposal();
    const service = await standInService(422, { nonFieldErrors: ["Signer=0x1 is not an owner or delegate"] });
    try {
      const cases: [Record<string, unknown>, string | RegExp][] = [
        [
          { file: unsigned.file, serviceUrl: service.url },
          "the proposal has no signature: the Safe Transaction Service accepts a transaction proposed by an owner " +
            "only; sign it first (operators:sign)",
        ],
        [{ file: unsigned.file }, /^configuration variable SAFE_TX_SERVICE_URL is not set/],
        [
          { file: unsigned.file, serviceUrl: "ftp://service" },
          'the Safe Transaction Service URL "ftp://service" is not an http(s) URL',
        ],
      ];
      for (const [args, message] of cases) {
        const result = await runTask("operators:send-to-service", args);
        if (typeof message === "string") expect(result.error?.message).to.equal(message);
        else expect(result.error?.message).to.match(message);
      }
      expect(service.received).to.deep.equal([]);

      const signed = await signedProposal(0);
      const refused = await runTask("operators:send-to-service", { file: signed.file, serviceUrl: service.url });
      expect(refused.error?.message).to.match(
        new RegExp(`^the Safe Transaction Service at ${service.url} refused the proposal: .*not an owner or delegate`),
      );
    } finally {
      await service.close();
    }
  });
});
