// The registry mirror here lacks EDR's foreign-platform builds, so npm leaves them out of the lock and `npm ci`
// then refuses the lock. Record them as the optional, platform-gated entries npm would have written.
import { readFileSync, writeFileSync } from "node:fs";
const file = process.argv[2] ?? "package-lock.json";
const lock = JSON.parse(readFileSync(file, "utf8"));
const edr = lock.packages["node_modules/@nomicfoundation/edr"];
const platforms = {
  "darwin-arm64": ["darwin", "arm64"],
  "darwin-x64": ["darwin", "x64"],
  "linux-arm64-gnu": ["linux", "arm64"],
  "linux-arm64-musl": ["linux", "arm64"],
  "win32-x64-msvc": ["win32", "x64"],
};
for (const [suffix, [os, cpu]] of Object.entries(platforms)) {
  const name = `@nomicfoundation/edr-${suffix}`;
  const key = `node_modules/${name}`;
  if (lock.packages[key] || !edr.optionalDependencies?.[name]) continue;
  lock.packages[key] = {
    version: edr.optionalDependencies[name],
    cpu: [cpu],
    dev: true,
    license: "MIT",
    optional: true,
    os: [os],
    engines: { node: ">= 20" },
  };
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
writeFileSync(file, JSON.stringify(lock, null, 2) + "\n");
