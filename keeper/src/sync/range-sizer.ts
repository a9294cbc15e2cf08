// Sizes eth_getLogs block ranges: halve on "too many results"/timeouts (or jump to the range a provider suggests),
// double after a success, always within [min, max]. A refused size is remembered: growth stops below it for a
// while instead of asking for it again on every other step. A range that returned many logs is not grown past
// `targetLogs` logs (bounded memory and store transactions, whatever the event density): nor past what the densest
// block seen lately allows (that density decays range by range), so a sparse stretch does not grow the range so far
// that the next burst (a month's charges) comes back as one huge answer. An answer far above the target is dropped
// and read again in ranges sized to it (`tooDense`).

/** Successes after which a refused size may be tried again (the provider's limits or the log density change). */
const FORGET_REFUSAL_AFTER = 64;
/** Factor by which the remembered densest block decays per range read (halves in ~22 ranges). */
const DENSITY_DECAY = 0.9;

export class RangeSizer {
  private current: number;
  /** Smallest size the provider refused recently; growth stays below it. */
  private refused = Infinity;
  private successesSinceRefusal = 0;
  /** Logs in the densest block of recent ranges (decaying). */
  private density = 0;

  constructor(
    readonly min: number,
    readonly max: number,
    initial: number,
    private readonly targetLogs = Infinity,
  ) {
    if (!(min >= 1 && min <= initial && initial <= max))
      throw new Error(`invalid range bounds: min ${min}, initial ${initial}, max ${max}`);
    this.current = initial;
  }

  /** Blocks to ask for next. */
  get size(): number {
    return this.current;
  }

  /**
   * The last range of `size` blocks succeeded (with `logs` logs, when known, and `densestBlock` logs in its densest
   * block).
   */
  grow(logs?: number, densestBlock = 0): void {
    if (++this.successesSinceRefusal >= FORGET_REFUSAL_AFTER) this.refused = Infinity;
    let next = this.current * 2;
    // Stay at three quarters of a refused size: close to the limit, but not at it.
    if (this.refused !== Infinity) next = Math.min(next, Math.max(this.min, Math.floor((this.refused * 3) / 4)));
    if (logs !== undefined && logs > 0 && this.targetLogs !== Infinity) {
      next = Math.min(next, Math.max(1, Math.floor((this.current * this.targetLogs) / logs)));
    }
    this.density = Math.max(densestBlock, this.density * DENSITY_DECAY);
    if (this.density >= 1 && this.targetLogs !== Infinity) {
      next = Math.min(next, Math.max(1, Math.floor(this.targetLogs / this.density)));
    }
    this.current = Math.max(this.min, Math.min(this.max, next));
  }

  /**
   * The last range brought `logs` logs, far more than the target: the next range is sized to the target (the caller
   * reads it again). Returns false when the range cannot get smaller.
   */
  tooDense(logs: number, densestBlock: number): boolean {
    if (this.current <= this.min || this.targetLogs === Infinity) return false;
    this.density = Math.max(this.density, densestBlock);
    this.current = Math.max(this.min, Math.min(this.current - 1, Math.floor((this.current * this.targetLogs) / logs)));
    return true;
  }

  /**
   * The last range was too large. `suggested` is a block count the provider said would work.
   * Returns false when already at the minimum (the caller must back off instead).
   */
  shrink(suggested?: number): boolean {
    if (this.current <= this.min) return false;
    this.refused = Math.min(this.refused, this.current);
    this.successesSinceRefusal = 0;
    const halved = Math.floor(this.current / 2);
    const next = suggested !== undefined && suggested >= 1 && suggested < this.current ? suggested : halved;
    this.current = Math.max(this.min, next);
    return true;
  }
}
