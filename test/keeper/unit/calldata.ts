import { expect } from "chai";
import { AbiCoder, getAddress, hexlify, randomBytes } from "ethers";

import { decodeBoolArray, encodeRefsCall, type SubscriptionRef } from "../../../keeper/src/calldata.js";
import { chargeOutcome } from "../../../keeper/src/scheduler.js";
import type { RpcReceipt } from "../../../keeper/src/rpc.js";
import { billingInterface } from "../../../keeper/src/sync/decode.js";

const tuple = (ref: SubscriptionRef) => [ref.id, ref.customer, ref.amount, ref.token];

/** Refs across the value ranges: zero, the top of uint256, checksummed and lower-case addresses. */
function refs(count: number): SubscriptionRef[] {
  return Array.from({ length: count }, (_, i) => {
    const customer = hexlify(randomBytes(20));
    return {
      id: i === 0 ? 0n : i === 1 ? (1n << 256n) - 1n : BigInt(hexlify(randomBytes(1 + (i % 32)))),
      customer: i % 2 === 0 ? getAddress(customer) : customer,
      amount: i === 2 ? (1n << 256n) - 1n : BigInt(i) * 10n ** 18n,
      token: getAddress(hexlify(randomBytes(20))),
    };
  });
}

describe("keeper calldata (chargeMany, areDue)", () => {
  for (const count of [0, 1, 3, 250]) {
    it(`encodes chargeMany and areDue of ${count} refs exactly as ethers' ABI coder does`, () => {
      const batch = refs(count);
      for (const fn of ["chargeMany", "areDue"] as const) {
        expect(encodeRefsCall(fn, batch)).to.equal(billingInterface.encodeFunctionData(fn, [batch.map(tuple)]));
      }
    });
  }

  it("refuses a ref that is not ABI-encodable, naming the field", () => {
    const [ref] = refs(1);
    expect(() => encodeRefsCall("chargeMany", [{ ...ref, id: -1n }])).to.throw(/ref\.id -1 is not a uint256/);
    expect(() => encodeRefsCall("chargeMany", [{ ...ref, amount: 1n << 256n }])).to.throw(/ref\.amount/);
    expect(() => encodeRefsCall("areDue", [{ ...ref, customer: "0x1234" }])).to.throw(/ref\.customer 0x1234/);
    expect(() => encodeRefsCall("areDue", [{ ...ref, token: `0x${"zz".repeat(20)}` }])).to.throw(/ref\.token/);
  });

  it("decodes a bool[] answer as ethers does", () => {
    const verdicts = Array.from({ length: 500 }, (_, i) => i % 3 === 0);
    const answer = AbiCoder.defaultAbiCoder().encode(["bool[]"], [verdicts]);
    expect(decodeBoolArray(answer, 500)).to.deep.equal(verdicts);
    expect(decodeBoolArray(AbiCoder.defaultAbiCoder().encode(["bool[]"], [[]]), 0)).to.deep.equal([]);
  });

  it("refuses a malformed bool[] answer: wrong length, wrong offset, a word that is no bool, truncated", () => {
    const answer = AbiCoder.defaultAbiCoder().encode(["bool[]"], [[true, false]]);
    expect(() => decodeBoolArray(answer, 3)).to.throw(/malformed bool\[3\]/);
    expect(() => decodeBoolArray(`0x${"0".repeat(63)}4${answer.slice(66)}`, 2)).to.throw(/malformed/);
    expect(() => decodeBoolArray(`${answer.slice(0, -1)}2`, 2)).to.throw(/item 1 is 0x0+2/);
    expect(() => decodeBoolArray(answer.slice(0, -64), 2)).to.throw(/malformed/);
    expect(() => decodeBoolArray("0x", 1)).to.throw(/malformed/);
  });
});

describe("chargeOutcome", () => {
  const billing = "0x00000000000000000000000000000000000000Ab";
  const log = (name: string, values: unknown[], address = billing) => {
    const { data, topics } = billingInterface.encodeEventLog(billingInterface.getEvent(name)!, values);
    return { address: address.toLowerCase(), data, topics };
  };
  const customer = "0x52908400098527886E0F7030069857D2E4169EE7";

  it("reads each outcome event of the billing contract, and ignores other contracts' logs", () => {
    const receipt = {
      status: 1,
      logs: [
        log("Charged", [7n, 1n, 10n, 99n]),
        log("ChargeFailed", [8n, 1n, customer, 50n]),
        log("SubscriptionLapsed", [9n, 1n, customer]),
        log("ChargeSkipped", [10n, 2]),
        log("Charged", [11n, 1n, 10n, 99n], "0x00000000000000000000000000000000000000cd"),
        { address: billing.toLowerCase(), data: "0x", topics: [`0x${"ee".repeat(32)}`, `0x${"00".repeat(31)}0c`] },
      ],
    } as unknown as RpcReceipt;
    expect(chargeOutcome(receipt, billing, [7n, 8n, 9n, 10n])).to.deep.equal({
      charged: [7n],
      failed: [8n, 9n],
      skipped: [10n],
      paymentFailed: [8n],
    });
  });

  it("counts every item failed when the transaction reverted", () => {
    const receipt = { status: 0, logs: [] } as unknown as RpcReceipt;
    expect(chargeOutcome(receipt, billing, [1n, 2n]).failed).to.deep.equal([1n, 2n]);
  });
});
