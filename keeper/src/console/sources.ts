// What the keeper gives the billing console beyond its store: a chain clock and token names, both cheap to ask for
// on every page refresh.
import { Interface } from "ethers";

import type { RpcClient } from "../rpc.js";

const erc20 = new Interface(["function symbol() view returns (string)", "function decimals() view returns (uint8)"]);

/** `read` called at most once per `ms`; callers in between share the last answer (or the call in flight). */
export function cachedFor<T>(ms: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (last === undefined || now - last.at >= ms) {
      const value = read();
      last = { at: now, value };
      // A failed read is not cached: the next caller tries again.
      value.catch(() => {
        if (last?.value === value) last = undefined;
      });
    }
    return last.value;
  };
}

/**
 * Token symbols and decimals read once per token from the chain (a token cannot change them without redeploying).
 * A token that does not answer (not an ERC-20 with metadata, or the node failed) is asked again after a minute; the
 * console shows base units meanwhile.
 */
export class TokenNames {
  private readonly known = new Map<string, { at: number; info: Promise<TokenInfo | undefined> }>();

  constructor(
    private readonly rpc: Pick<RpcClient, "call">,
    private readonly retryUnknownMs = 60_000,
  ) {}

  async lookup(token: string): Promise<TokenInfo | undefined> {
    const key = token.toLowerCase();
    const entry = this.known.get(key);
    if (entry !== undefined) {
      const info = await entry.info;
      if (info !== undefined || Date.now() - entry.at < this.retryUnknownMs) return info;
    }
    const info = this.read(key);
    this.known.set(key, { at: Date.now(), info });
    return info;
  }

  private async read(token: string): Promise<TokenInfo | undefined> {
    try {
      const [symbol] = erc20.decodeFunctionResult(
        "symbol",
        await this.rpc.call({ to: token, data: erc20.encodeFunctionData("symbol") }),
      );
      const [decimals] = erc20.decodeFunctionResult(
        "decimals",
        await this.rpc.call({ to: token, data: erc20.encodeFunctionData("decimals") }),
      );
      // A symbol is whatever the token's deployer chose: keep it short and printable.
      return {
        symbol: String(symbol)
          .replace(/[^\x20-\x7e]/g, "?")
          .slice(0, 16),
        decimals: Number(decimals),
      };
    } catch {
      return undefined;
    }
  }
}

/** What the console shows of a token. */
export interface TokenInfo {
  symbol: string;
  decimals: number;
}
