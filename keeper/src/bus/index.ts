/**
 * Builds the keeper's event bus from its config: in-process unless a RabbitMQ URL is configured.
 * Config shape (optional): `"bus": { "rabbitmqUrl": "amqp://guest:guest@127.0.0.1:5672", "exchange": "..." }`.
 */
import { type EventBus, InProcessEventBus } from "./event-bus.js";
import { type BusLogger, RabbitMqEventBus } from "./rabbitmq.js";

export interface EventBusConfig {
  /** amqp(s)://user:password@host:port[/vhost]; absent: the in-process bus. */
  rabbitmqUrl?: string;
  /** Topic exchange name; [recurring-billing.events]. */
  exchange?: string;
  /** [30000] how long one publish keeps retrying before the batch stays in the outbox for a later retry. */
  publishTimeoutMs?: number;
}

export { type ChainEvent, type EventBus, InProcessEventBus } from "./event-bus.js";
export { DEFAULT_EXCHANGE, RabbitMqEventBus, RabbitMqUnavailableError } from "./rabbitmq.js";

/** Resolves once the bus is usable; a RabbitMQ bus rejects with a RabbitMqUnavailableError naming the broker. */
export async function createEventBus(config: EventBusConfig | undefined, logger?: BusLogger): Promise<EventBus> {
  if (!config?.rabbitmqUrl) return new InProcessEventBus();
  return RabbitMqEventBus.connect({
    url: config.rabbitmqUrl,
    exchange: config.exchange,
    publishTimeoutMs: config.publishTimeoutMs,
    logger,
  });
}
