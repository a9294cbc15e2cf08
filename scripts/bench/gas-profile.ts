// Where a transaction's gas goes, from `debug_traceTransaction`: per contract frame, split into storage reads,
// storage writes, account access of calls, events and plain execution. Used by `npm run bench:gas` to show the floor
// of a charge, so the README's breakdown can be reproduced rather than taken on trust.
import type { EIP1193Provider } from "hardhat/types/providers";

interface StructLog {
  op: string;
  gas: number;
  gasCost: number;
  depth: number;
  stack?: string[];
}

/** Gas of one contract frame (summed over every call into that contract), by kind of work. */
export interface FrameGas {
  contract: string;
  storageReads: number;
  storageWrites: number;
  calls: number;
  events: number;
  execution: number;
}

export interface GasProfile {
  /** 21,000 plus calldata (and access list): what the transaction pays before its first opcode. */
  intrinsic: number;
  frames: FrameGas[];
}

const CALLS = new Set(["CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"]);

function kindOf(op: string): Exclude<keyof FrameGas, "contract"> {
  if (op === "SLOAD") return "storageReads";
  if (op === "SSTORE") return "storageWrites";
  if (CALLS.has(op)) return "calls";
  if (op.startsWith("LOG")) return "events";
  return "execution";
}

/**
 * Profiles a mined transaction. `labels` names contracts by lowercase address; unnamed ones show as their address.
 * A call's own cost (account access, memory, value transfer) is its gas drop minus what its child frame used, so a
 * child's work is counted once, in the child's frame.
 */
export async function profileTransaction(
  provider: EIP1193Provider,
  hash: string,
  to: string,
  gasUsed: bigint,
  labels: Record<string, string>,
): Promise<GasProfile> {
  const trace = (await provider.request({ method: "debug_traceTransaction", params: [hash, {}] })) as {
    structLogs?: StructLog[];
  };
  const logs = trace.structLogs;
  if (logs === undefined || logs.length === 0) throw new Error(`debug_traceTransaction returned no steps for ${hash}`);

  const frames = new Map<string, FrameGas>();
  const frameOf = (address: string): FrameGas => {
    const contract = labels[address.toLowerCase()] ?? address;
    let frame = frames.get(contract);
    if (frame === undefined) {
      frame = { contract, storageReads: 0, storageWrites: 0, calls: 0, events: 0, execution: 0 };
      frames.set(contract, frame);
    }
    return frame;
  };

  const addresses = [to]; // addresses[depth - 1] is the contract executing at that depth
  for (let i = 0; i < logs.length; i++) {
    const step = logs[i];
    addresses.length = step.depth;
    let cost = step.gasCost;
    const entersChild = CALLS.has(step.op) && logs[i + 1] !== undefined && logs[i + 1].depth > step.depth;
    if (entersChild) {
      let end = i + 1;
      while (end + 1 < logs.length && logs[end + 1].depth > step.depth) end++;
      const last = logs[end];
      const childUsed = logs[i + 1].gas - (last.gas - last.gasCost);
      const after = logs[end + 1];
      if (after === undefined) throw new Error(`trace of ${hash} ends inside a call`);
      cost = step.gas - after.gas - childUsed;
      const stack = step.stack;
      if (stack === undefined) throw new Error("debug_traceTransaction returned no stack: cannot tell call targets");
      // CALL, STATICCALL, DELEGATECALL: the target is the second stack item from the top.
      addresses[step.depth] =
        "0x" +
        BigInt(stack[stack.length - 2])
          .toString(16)
          .padStart(40, "0");
    }
    frameOf(addresses[step.depth - 1])[kindOf(step.op)] += cost;
  }

  const executed = logs[0].gas - (logs[logs.length - 1].gas - logs[logs.length - 1].gasCost);
  return { intrinsic: Number(gasUsed) - executed, frames: [...frames.values()] };
}

/** The profile as aligned text lines, one row per frame plus the intrinsic cost and the total. */
export function formatProfile(profile: GasProfile): string[] {
  const columns = ["storage reads", "storage writes", "calls", "events", "execution", "total"] as const;
  const rows: string[][] = [["frame", ...columns]];
  const format = (value: number) => value.toLocaleString("en-US");
  let total = profile.intrinsic;
  rows.push(["transaction (base + calldata)", "", "", "", "", "", format(profile.intrinsic)]);
  for (const frame of profile.frames) {
    const values = [frame.storageReads, frame.storageWrites, frame.calls, frame.events, frame.execution];
    const sum = values.reduce((a, b) => a + b, 0);
    total += sum;
    rows.push([frame.contract, ...values.map(format), format(sum)]);
  }
  rows.push(["total", "", "", "", "", "", format(total)]);
  const widths = rows[0].map((_, column) => Math.max(...rows.map((cells) => cells[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join("  ");
  return [line(rows[0]), widths.map((width) => "-".repeat(width)).join("  "), ...rows.slice(1).map(line)];
}
