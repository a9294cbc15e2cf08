// The scale-out part of the keeper configuration: the optional RabbitMQ bus, the instance id and the lease settings.
import { hostname } from "node:os";

import { expect } from "chai";

import { applyEnvOverrides, describeConfig, parseConfig } from "../../../keeper/src/config.js";
import { issuesOf, minimal } from "../support/config-issues.js";

const SECRET_URL = "amqp://keeper:s3cret@broker.internal:5672/billing";

describe("Keeper config (scale-out)", function () {
  describe("parseConfig", function () {
    it("uses the in-process bus, a hostname-pid instance id and 30 s leases by default", function () {
      const config = parseConfig(minimal);
      expect(config.bus).to.equal(undefined);
      expect(config.instanceId).to.equal(`${hostname()}-${process.pid}`);
      expect(config.leases).to.deep.equal({ ttlSeconds: 30, followerLagBlocks: 20 });
    });

    it("fills the bus defaults around a RabbitMQ URL", function () {
      const config = parseConfig({ ...minimal, bus: { rabbitmqUrl: SECRET_URL } });
      expect(config.bus).to.deep.equal({
        rabbitmqUrl: SECRET_URL,
        exchange: "recurring-billing.events",
        publishTimeoutMs: 30_000,
      });
    });

    it("names a bus without a URL, a non-amqp URL (without echoing it) and a bad exchange", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, bus: { exchange: "x" } }))).to.deep.equal([
        "bus.rabbitmqUrl: is required (amqp://user:password@host:5672[/vhost])",
      ]);
      const issues = issuesOf(() =>
        parseConfig({ ...minimal, bus: { rabbitmqUrl: "http://user:s3cret@host", exchange: "a b" } }),
      );
      expect(issues).to.have.length(2);
      expect(issues[0]).to.match(/^bus\.rabbitmqUrl: expected an amqp:\/\/ or amqps:\/\/ URL/);
      expect(issues[1]).to.match(/^bus\.exchange: expected an exchange name/);
      expect(issues.join("\n")).to.not.contain("s3cret");
    });

    it("rejects a lease TTL outside 2..3600 s and an unknown lease field", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, leases: { ttlSeconds: 1 } }))).to.deep.equal([
        "leases.ttlSeconds: expected seconds between 2 and 3600, got 1",
      ]);
      expect(issuesOf(() => parseConfig({ ...minimal, leases: { ttl: 5 } }))[0]).to.match(
        /^leases\.ttl: unknown field/,
      );
    });

    it("rejects an instance id with spaces", function () {
      expect(issuesOf(() => parseConfig({ ...minimal, instanceId: "keeper one" }))[0]).to.match(
        /^instanceId: expected a name for this keeper instance/,
      );
    });
  });

  describe("applyEnvOverrides", function () {
    it("sets bus.rabbitmqUrl from KEEPER_RABBITMQ_URL, keeping the file's other bus fields", function () {
      const input = applyEnvOverrides(
        { ...minimal, bus: { rabbitmqUrl: "amqp://file", exchange: "from-file" } },
        { KEEPER_RABBITMQ_URL: SECRET_URL, KEEPER_INSTANCE_ID: "keeper-7" },
      );
      const config = parseConfig(input);
      expect(config.bus?.rabbitmqUrl).to.equal(SECRET_URL);
      expect(config.bus?.exchange).to.equal("from-file");
      expect(config.instanceId).to.equal("keeper-7");
    });
  });

  describe("describeConfig", function () {
    it("logs the exchange and instance id but never the broker URL", function () {
      const described = describeConfig(parseConfig({ ...minimal, bus: { rabbitmqUrl: SECRET_URL } }));
      expect(described.bus).to.deep.equal({ rabbitmq: true, exchange: "recurring-billing.events" });
      expect(JSON.stringify(described)).to.not.contain("s3cret");
    });
  });
});
