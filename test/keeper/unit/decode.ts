import { expect } from "chai";

import { decodeLog, billingInterface } from "../../../keeper/src/sync/decode.js";
import type { RpcLog } from "../../../keeper/src/rpc.js";

/** A value of `type` that exercises the top of its range (uint) or a mixed-case checksummed address. */
function sample(type: string, seed: number): unknown {
  if (type === "address") return "0x52908400098527886E0F7030069857D2E4169EE7";
  if (type === "bool") return seed % 2 === 0;
  const bits = Number(type.slice(4) || 256);
  return (1n << BigInt(bits)) - 1n - BigInt(seed);
}

function logOf(name: string, seed: number): RpcLog {
  const fragment = billingInterface.getEvent(name)!;
  const values = fragment.inputs.map((input, i) => sample(input.type, seed + i));
  const { data, topics } = billingInterface.encodeEventLog(fragment, values);
  return {
    address: "0x00000000000000000000000000000000000000AB",
    blockNumber: 7,
    blockHash: `0x${"11".repeat(32)}`,
    transactionHash: `0x${"22".repeat(32)}`,
    logIndex: 3,
    data,
    topics,
  } as RpcLog;
}

/** What ethers' own parser makes of a log, in the keeper's JSON-safe form. */
function reference(log: RpcLog) {
  const parsed = billingInterface.parseLog({ topics: log.topics, data: log.data })!;
  const args: Record<string, unknown> = {};
  parsed.fragment.inputs.forEach((input, i) => {
    const value: unknown = parsed.args[i];
    args[input.name] =
      typeof value === "bigint" ? value.toString() : typeof value === "string" ? value.toLowerCase() : value;
  });
  return { name: parsed.name, args };
}

describe("Keeper decodeLog", function () {
  const names: string[] = [];
  billingInterface.forEachEvent((fragment) => names.push(fragment.name));

  for (const name of names) {
    it(`decodes ${name} exactly as the ABI decoder does`, function () {
      for (const seed of [0, 1]) {
        const log = logOf(name, seed);
        const event = decodeLog(31337, log)!;
        expect({ name: event.name, args: event.args }).to.deep.equal(reference(log));
        expect(event.id).to.equal(`31337:${log.blockHash}:${log.transactionHash}:3`);
        expect(event.address).to.equal("0x00000000000000000000000000000000000000ab");
      }
    });
  }

  it("returns undefined for a log of another contract's event", function () {
    const log = { ...logOf("Charged", 0), topics: [`0x${"33".repeat(32)}`] };
    expect(decodeLog(31337, log)).to.equal(undefined);
  });

  it("returns undefined for a log whose data or topics do not fit the event", function () {
    const log = logOf("ChargeFailed", 0);
    expect(decodeLog(31337, { ...log, data: `${log.data}00` })).to.equal(undefined);
    expect(decodeLog(31337, { ...log, topics: log.topics.slice(0, 2) })).to.equal(undefined);
    const dirtyAddress = `0x${"ff".repeat(12)}${log.topics[3].slice(26)}`;
    expect(decodeLog(31337, { ...log, topics: [...log.topics.slice(0, 3), dirtyAddress] })).to.equal(undefined);
  });
});
