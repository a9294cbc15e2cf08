// The keeper's JSON-RPC layer (keeper/src/rpc/): error classification, transports that check every answer belongs
// to its request, several endpoints with fail-over, and the typed client the keeper's parts use.
export * from "./rpc/client.js";
export * from "./rpc/errors.js";
export { type Eip1193Provider, redactUrl } from "./rpc/transport.js";

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(workers);
  return results;
}
