/**
 * A contract event as the keeper stored it. `id` is the idempotency key `chainId:blockHash:txHash:logIndex`:
 * the same log always gets the same id, and a log re-mined in another block after a reorg gets a new one.
 */
export interface ChainEvent {
  id: string;
  chainId: number;
  /** Lower-case address of the emitting contract. */
  address: string;
  /** Event name from the ABI, e.g. "Charged". */
  name: string;
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  logIndex: number;
  /** Decoded arguments by name; bigints as decimal strings so the value is JSON-safe. */
  args: Record<string, string | number | boolean>;
}

/**
 * Where synced events go besides the store. `publish` resolves only once every event is durably accepted
 * (for RabbitMQ: publisher-confirmed), because the sync cursor advances right after it. `retract` announces
 * events that a reorg removed. Both must be idempotent: after a crash the same events may be sent again.
 */
export interface EventBus {
  publish(events: readonly ChainEvent[]): Promise<void>;
  retract(events: readonly ChainEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** The default bus: in-process listeners, nothing to start. */
export class InProcessEventBus implements EventBus {
  private readonly listeners = new Set<(event: ChainEvent, removed: boolean) => void>();

  /** Registers `listener`; returns a function that unregisters it. */
  subscribe(listener: (event: ChainEvent, removed: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async publish(events: readonly ChainEvent[]): Promise<void> {
    for (const event of events) for (const listener of this.listeners) listener(event, false);
  }

  async retract(events: readonly ChainEvent[]): Promise<void> {
    for (const event of events) for (const listener of this.listeners) listener(event, true);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
