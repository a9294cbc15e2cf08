// Query-string parameters of the console's JSON API: every one bounded, anything else refused with a reason, so no
// URL can ask the store for an unbounded query.

/** A request the API refuses: `status` (400, 401, 404, 405) and a message saying why. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Reads a request's query string, refusing parameters the endpoint does not take. */
export class Params {
  private readonly used = new Set<string>();

  constructor(private readonly search: URLSearchParams) {}

  /**
   * A whole number in [min, max]; `fallback` when absent.
   *
   * @throws ApiError 400 naming the parameter and its bounds.
   */
  int(name: string, min: number, max: number, fallback: number): number {
    this.used.add(name);
    const raw = this.search.get(name);
    if (raw === null) return fallback;
    if (!/^\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new ApiError(400, `${name} must be a whole number from ${min} to ${max}`);
    }
    return Number(raw);
  }

  /**
   * One of `allowed`; `fallback` when absent.
   *
   * @throws ApiError 400 listing the accepted values.
   */
  choice<T extends string>(name: string, allowed: readonly T[], fallback: T | undefined): T | undefined {
    this.used.add(name);
    const raw = this.search.get(name);
    if (raw === null) return fallback;
    const found = allowed.find((item) => item === raw);
    if (found === undefined) throw new ApiError(400, `${name} must be one of ${allowed.join(", ")}`);
    return found;
  }

  /** @throws ApiError 400 for a parameter no accessor asked for (a typo must not be silently ignored). */
  done(): void {
    for (const name of this.search.keys()) {
      if (!this.used.has(name)) throw new ApiError(400, `unknown parameter ${name}`);
    }
  }
}
