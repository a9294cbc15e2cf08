// The V8 limits the keeper runs with in production (systemd unit, Dockerfile; `npm run bench:keeper` too). The
// keeper's live heap is a few tens of MiB whatever the number of subscriptions (every query that can return many
// rows is bounded), but V8 sizes its heap to the machine (GiBs on a big server) and lets garbage pile up to hundreds
// of MiB before it collects. 128 MiB of old space leaves room for the largest single answer the keeper must hold
// (one eth_getLogs answer of a dense block: ~2,300 charges per 30M gas); 4 MiB semi-spaces keep the young
// generation small. Tests check that the unit and the Dockerfile set exactly these.
export const KEEPER_NODE_OPTIONS = "--max-old-space-size=128 --max-semi-space-size=4";
