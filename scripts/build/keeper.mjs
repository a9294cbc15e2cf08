// Bundles the keeper CLI into dist/keeper.mjs for production: our code and the contract ABIs (from the TypeChain
// factories `hardhat build` generates) in one file; runtime dependencies stay in node_modules (`npm ci --omit=dev`).
// Nothing from Hardhat is needed at run time. The billing console's static page is copied to dist/static.
import { chmodSync, cpSync, rmSync } from "node:fs";
import path from "node:path";

import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "../..");
const outfile = path.join(root, "dist/keeper.mjs");

const result = await build({
  entryPoints: [path.join(root, "keeper/src/cli/entry.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  // Production dependencies load from node_modules (PGlite needs its wasm files next to it).
  packages: "external",
  banner: { js: "#!/usr/bin/env node" },
  sourcemap: "linked",
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
// The billing console's page, next to the bundle where its server looks for it (`./static/` of the module).
rmSync(path.join(root, "dist/static"), { recursive: true, force: true });
cpSync(path.join(root, "keeper/src/console/static"), path.join(root, "dist/static"), { recursive: true });
const bytes = result.metafile.outputs[path.relative(process.cwd(), outfile)]?.bytes;
console.log(`built ${path.relative(root, outfile)}${bytes === undefined ? "" : ` (${Math.round(bytes / 1024)} KiB)`}`);
