// The V8 limits the keeper runs with in production (systemd unit, Dockerfile; `npm run bench:keeper` too). The
// keeper's live heap is a few tens of MiB whatever the number of subscriptions (every query that can return many
// rows is bounded), but V8 sizes its heap to the machine (GiBs on a big server) and lets garbage pile up to hundreds
// of MiB before it collects: 96 MiB of old space and 4 MiB semi-spaces keep the process small at a few percent of
// CPU. Tests check that the unit and the Dockerfile set exactly these.
export const KEEPER_NODE_OPTIONS = "--max-old-space-size=96 --max-semi-space-size=4";
