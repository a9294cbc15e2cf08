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
 * Where synced events go besides the store (through the outbox, bus/outbox.ts). `publish` resolves only once every
 * event is durably accepted (for RabbitMQ: publisher-confirmed), because the outbox deletes the rows right after it.
 * `retract` announces events that a reorg removed. Both must be idempotent: after a crash the same events may be
 * sent again.
 * `sequence` orders the publications of one event id (a block reorged out may come back with the same hash): a new
 * publication has a higher one than every earlier publication of its events, a re-send the same one (messages.ts).
 */
export interface EventBus {
  publish(events: readonly ChainEvent[], sequence: number): Promise<void>;
  retract(events: readonly ChainEvent[], sequence: number): Promise<void>;
  close(): Promise<void>;
}

/** The default bus: in-process listeners, nothing to start. */
export type BusListener = (event: ChainEvent, removed: boolean, sequence: number) => void;

export class InProcessEventBus implements EventBus {
  private readonly listeners = new Set<BusListener>();

  /** Registers `listener`; returns a function that unregisters it. */
  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async publish(events: readonly ChainEvent[], sequence: number): Promise<void> {
    for (const event of events) for (const listener of this.listeners) listener(event, false, sequence);
  }

  async retract(events: readonly ChainEvent[], sequence: number): Promise<void> {
    for (const event of events) for (const listener of this.listeners) listener(event, true, sequence);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
