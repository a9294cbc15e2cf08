// Sizes eth_getLogs block ranges: halve on "too many results"/timeouts (or jump to the range a provider suggests),
// double after a success, always within [min, max].

export class RangeSizer {
  private current: number;

  constructor(
    readonly min: number,
    readonly max: number,
    initial: number,
  ) {
    if (!(min >= 1 && min <= initial && initial <= max))
      throw new Error(`invalid range bounds: min ${min}, initial ${initial}, max ${max}`);
    this.current = initial;
  }

  /** Blocks to ask for next. */
  get size(): number {
    return this.current;
  }

  /** The last range of `size` blocks succeeded. */
  grow(): void {
    this.current = Math.min(this.max, this.current * 2);
  }

  /**
   * The last range was too large. `suggested` is a block count the provider said would work.
   * Returns false when already at the minimum (the caller must back off instead).
   */
  shrink(suggested?: number): boolean {
    if (this.current <= this.min) return false;
    const halved = Math.floor(this.current / 2);
    const next = suggested !== undefined && suggested >= 1 && suggested < this.current ? suggested : halved;
    this.current = Math.max(this.min, next);
    return true;
  }
}
