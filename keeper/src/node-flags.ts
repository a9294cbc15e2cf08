import v8 from "node:v8";

// The V8 limits the keeper runs with in production (systemd unit, Dockerfile; `npm run bench:keeper` too). The
// keeper's live heap is a few tens of MiB whatever the number of subscriptions (every query that can return many
// rows is bounded), but V8 sizes its heap to the machine (GiBs on a big server) and lets garbage pile up to hundreds
// of MiB before it collects. 128 MiB of old space leaves room for the largest single answer the keeper must hold
// (one eth_getLogs answer of a dense block: ~2,300 charges per 30M gas); 4 MiB semi-spaces keep the young
// generation small. Tests check that the unit and the Dockerfile set exactly these.
export const KEEPER_NODE_OPTIONS = "--max-old-space-size=128 --max-semi-space-size=4";

/**
 * V8 flags NODE_OPTIONS does not accept, set by both keeper entries before the embedded store compiles its
 * WebAssembly: PGlite's PostgreSQL is compiled once by the baseline compiler (Liftoff) and never again by the optimizing
 * one, whose code and compile memory cost ~45-60 MiB of peak RSS (measured on 100,000 inserted events: 202 -> 157 MiB)
 * for 4-13% more CPU in store work. Nothing else in the keeper is WebAssembly.
 */
export const KEEPER_V8_FLAGS = "--liftoff-only";

export function applyKeeperV8Flags(): void {
  v8.setFlagsFromString(KEEPER_V8_FLAGS);
}
