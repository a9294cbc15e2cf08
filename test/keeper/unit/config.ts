import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { encryptKeystoreJson, Wallet } from "ethers";

import { applyEnvOverrides, ConfigError, loadConfig, parseConfig } from "../../../keeper/src/config.js";
import { issuesOf, minimal } from "../support/config-issues.js";
import { createSigner } from "../../../keeper/src/signer.js";

describe("Keeper config", function () {
  describe("parseConfig", function () {
    it("fills the documented defaults", function () {
      const config = parseConfig(minimal);
      expect(config.rpcUrl).to.equal("http://127.0.0.1:8545");
      expect(config.confirmations).to.equal(2);
      expect(config.logRange).to.deep.equal({ initial: 2000, min: 1, max: 10000 });
      expect(config.store).to.deep.equal({ dataDir: ".keeper-data" });
      expect(config.fees.bumpPercent).to.equal(15);
      expect(config.lowBalanceWei).to.equal(100000000000000000n);
      expect(config.metrics).to.deep.equal({ host: "127.0.0.1", port: 9464 });
    });

    it("names every wrong field, what it expects and what it got", function () {
      const issues = issuesOf(() =>
        parseConfig({
          ...minimal,
          chainId: "abc",
          billingAddress: "0x123",
          confirmations: -1,
          fees: { bumpPercent: 5 },
          lowBalanceWei: "1e18",
        }),
      );
      expect(issues).to.have.members([
        'chainId: expected a positive integer chain id, e.g. 31337, got "abc"',
        'billingAddress: expected a 0x-prefixed 20-byte address (checksummed or lower-case), got "0x123"',
        "confirmations: expected a number of blocks >= 0, got -1",
        "fees.bumpPercent: expected a percentage >= 10 (nodes reject smaller replacement bumps), got 5",
        'lowBalanceWei: expected an amount in wei as a decimal string, e.g. "100000000000000000", got "1e18"',
      ]);
    });

    it("reports missing required fields", function () {
      const issues = issuesOf(() => parseConfig({ signer: minimal.signer }));
      expect(issues).to.include("chainId: is required (a positive integer chain id, e.g. 31337)");
      expect(issues).to.include("billingAddress: is required (the RecurringBilling address)");
    });

    it("rejects misspelled fields instead of ignoring them", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, confirmation: 3 }))).to.deep.equal([
        "confirmation: unknown field (check the spelling; see keeper/README.md)",
      ]);
    });

    it("keeps the billing console off by default, and refuses it beyond loopback without a token", function () {
      expect(parseConfig(minimal).console).to.deep.equal({ host: "127.0.0.1" });
      expect(parseConfig({ ...minimal, console: { port: 0 } }).console).to.deep.equal({ host: "127.0.0.1", port: 0 });
      expect(issuesOf(() => parseConfig({ ...minimal, console: { host: "0.0.0.0", port: 9465 } }))).to.deep.equal([
        "console.token: a console reachable from other machines needs a token (console.token or KEEPER_CONSOLE_TOKEN)",
      ]);
      expect(issuesOf(() => parseConfig({ ...minimal, console: { port: 9465, token: "short" } }))).to.deep.equal([
        "console.token: expected at least 16 characters (a bearer token the API requires)",
      ]);
      const fromEnv = applyEnvOverrides(
        { ...minimal },
        { KEEPER_CONSOLE_PORT: "9465", KEEPER_CONSOLE_HOST: "0.0.0.0", KEEPER_CONSOLE_TOKEN: "a-long-enough-token" },
      );
      expect(parseConfig(fromEnv).console).to.deep.equal({ host: "0.0.0.0", port: 9465, token: "a-long-enough-token" });
    });

    it("fills the quarantine back-off defaults and names a wrong or inconsistent one", function () {
      expect(parseConfig(minimal).quarantine).to.deep.equal({ retrySeconds: 3600, maxRetrySeconds: 604_800 });
      expect(
        issuesOf(() => parseConfig({ ...minimal, quarantine: { retrySeconds: 0, maxRetrySeconds: "1h" } })),
      ).to.have.members([
        "quarantine.retrySeconds: expected seconds >= 1 before a quarantined subscription is simulated again, got 0",
        'quarantine.maxRetrySeconds: expected seconds >= 1 (cap on the doubling back-off), got "1h"',
      ]);
      expect(
        issuesOf(() => parseConfig({ ...minimal, quarantine: { retrySeconds: 600, maxRetrySeconds: 60 } })),
      ).to.deep.equal([
        'quarantine: expected retrySeconds <= maxRetrySeconds, got {"retrySeconds":600,"maxRetrySeconds":60}',
      ]);
      expect(issuesOf(() => parseConfig({ ...minimal, quarantine: { retry: 60 } }))).to.deep.equal([
        "quarantine.retry: unknown field (check the spelling; see keeper/README.md)",
      ]);
    });

    it("rejects an inconsistent log range", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, logRange: { initial: 50, min: 100, max: 1000 } }))).to.deep.equal(
        ['logRange: expected min <= initial <= max, got {"initial":50,"min":100,"max":1000}'],
      );
    });

    it("requires exactly one password source for a keystore", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, signer: { type: "keystore", path: "op.json" } }))).to.deep.equal([
        "signer.passwordEnv: expected exactly one of passwordEnv (variable name) or passwordFile (path)",
      ]);
    });

    it("rejects an unknown signer type", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, signer: { type: "kms" } }))).to.deep.equal([
        'signer.type: expected type "keystore" or "env", got "kms"',
      ]);
    });

    it("never echoes a PostgreSQL URL, which may hold a password", function () {
      const issues = issuesOf(() => parseConfig({ ...minimal, store: { postgresUrl: "mysql://u:secret@h/db" } }));
      expect(issues.join()).to.not.include("secret");
      expect(issues[0]).to.match(/^store/);
    });
  });

  describe("applyEnvOverrides", function () {
    it("lets KEEPER_* variables override the file, reporting bad values under the field name", function () {
      const merged = applyEnvOverrides(minimal, {
        KEEPER_CHAIN_ID: "5",
        KEEPER_POSTGRES_URL: "postgres://localhost/k",
      });
      expect(parseConfig(merged).chainId).to.equal(5);
      expect(parseConfig(merged).store).to.deep.equal({ postgresUrl: "postgres://localhost/k" });
      expect(issuesOf(() => parseConfig(applyEnvOverrides(minimal, { KEEPER_METRICS_PORT: "http" })))).to.deep.equal([
        'metrics.port: expected a TCP port 0..65535 (0 picks a free one), got "http (from KEEPER_METRICS_PORT)"',
      ]);
    });
  });

  describe("loadConfig", function () {
    it("reports an unreadable or non-JSON file under --config", function () {
      expect(issuesOf(() => loadConfig("/nonexistent/keeper.json", {}))[0]).to.equal(
        "--config: cannot read /nonexistent/keeper.json: ENOENT",
      );
      const dir = mkdtempSync(path.join(tmpdir(), "keeper-config-"));
      writeFileSync(path.join(dir, "bad.json"), "{ not json");
      expect(issuesOf(() => loadConfig(path.join(dir, "bad.json"), {}))[0]).to.match(/^--config: .* is not valid JSON/);
    });

    it("resolves relative paths against the config file's directory", function () {
      const dir = mkdtempSync(path.join(tmpdir(), "keeper-config-"));
      const file = path.join(dir, "keeper.json");
      writeFileSync(file, JSON.stringify({ ...minimal, store: { dataDir: "data" } }));
      expect(loadConfig(file, {}).store).to.deep.equal({ dataDir: path.join(dir, "data") });
    });
  });
});

describe("Keeper signer", function () {
  describe("createSigner", function () {
    const wallet = Wallet.createRandom();
    const account = { address: wallet.address, privateKey: wallet.privateKey };

    it("decrypts a keystore with the password from a file and never exposes the key", async function () {
      const dir = mkdtempSync(path.join(tmpdir(), "keeper-signer-"));
      // Light scrypt parameters keep the test fast; production keystores use the defaults.
      writeFileSync(path.join(dir, "op.json"), await encryptKeystoreJson(account, "pw", { scrypt: { N: 1024 } }));
      writeFileSync(path.join(dir, "pw.txt"), "pw\n");
      const signer = await createSigner({
        type: "keystore",
        path: path.join(dir, "op.json"),
        passwordFile: path.join(dir, "pw.txt"),
      });
      expect(signer.address).to.equal(wallet.address);
      expect(JSON.stringify(signer)).to.not.include(wallet.privateKey.slice(2));
      expect(String(Object.values(signer))).to.not.include(wallet.privateKey.slice(2));
    });

    it("reports a wrong keystore password without the password", async function () {
      const dir = mkdtempSync(path.join(tmpdir(), "keeper-signer-"));
      writeFileSync(path.join(dir, "op.json"), await encryptKeystoreJson(account, "right", { scrypt: { N: 1024 } }));
      const error = await createSigner(
        { type: "keystore", path: path.join(dir, "op.json"), passwordEnv: "PW" },
        { PW: "wrong-secret" },
      ).catch((err: ConfigError) => err);
      expect((error as ConfigError).issues).to.deep.equal([
        `signer.path: cannot decrypt keystore ${path.join(dir, "op.json")}: wrong password`,
      ]);
      expect((error as Error).message).to.not.include("wrong-secret");
    });

    it("reports a malformed private key without echoing it", async function () {
      const error = await createSigner({ type: "env", variable: "K" }, { K: "0xdeadbeef-secret" }).catch(
        (err: Error) => err,
      );
      expect((error as Error).message).to.include("signer.variable: K does not hold a valid private key");
      expect((error as Error).message).to.not.include("deadbeef");
    });
  });
});
