/**
 * HTTP transport for remote teachers: POST (JSON or binary) with a concurrency limit, a rate limit, a timeout
 * per attempt, and retries with exponential backoff on transient failures — 5xx answers, timeouts and
 * broken connections (refused, reset, cut mid-body), plus 429 (honouring `Retry-After`) unless
 * disabled. Other 4xx answers and malformed answers are not retried: asking again would not help.
 *
 * Every attempt is counted ({@link TransportStats}), so callers can report failed attempts next to
 * the queries they paid for.
 *
 * @module
 */
import { type EncodedRequest, ProtocolError } from "./protocols.ts";

/** Transport options (defaults in {@link TRANSPORT_DEFAULTS}). */
export interface TransportOptions {
  /** Milliseconds per attempt, connection to last byte of the answer. */
  timeoutMs?: number;
  /** Retries after the first attempt for transient failures. */
  retries?: number;
  /** First backoff; doubles after every failed attempt up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Request starts per second (attempts included); `Infinity` for no limit. */
  requestsPerSecond?: number;
  /** Value of the `Authorization` header (e.g. "Bearer …"); never logged. */
  auth?: string;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Retry 429 Too Many Requests (default true). */
  retry429?: boolean;
}

/** Transport defaults. */
export const TRANSPORT_DEFAULTS = {
  timeoutMs: 30_000,
  retries: 5,
  backoffMs: 100,
  maxBackoffMs: 5_000,
  concurrency: 4,
  requestsPerSecond: Infinity,
  retry429: true,
};

/** Why an attempt failed. */
export type FailureKind = "http" | "timeout" | "network" | "protocol";

/** A request that failed for good (retries exhausted, or not retryable). */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly url: string,
    readonly attempts: number,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RemoteError";
  }
}

/** Counts of requests and attempts. */
export interface TransportStats {
  /** Requests made (each may take several attempts). */
  requests: number;
  /** Attempts sent. */
  attempts: number;
  /** Attempts that did not give a usable answer. */
  failedAttempts: number;
  /** Attempts that were retried. */
  retries: number;
  /** Requests that failed for good. */
  failedRequests: number;
  /** Failed attempts by cause: "http 503", "timeout", "network", "protocol". */
  byCause: Record<string, number>;
}

/** A counting semaphore. */
class Semaphore {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((r) => this.#waiting.push(r));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

class Attempt extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly retry: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** POSTs JSON with limits and retries (see the module doc). */
export class Transport {
  readonly options: Required<Omit<TransportOptions, "auth" | "headers">>;
  readonly stats: TransportStats = {
    requests: 0,
    attempts: 0,
    failedAttempts: 0,
    retries: 0,
    failedRequests: 0,
    byCause: {},
  };
  readonly #headers: Record<string, string>;
  readonly #slots: Semaphore;
  #nextStart = 0;
  #retryAfterMs = 0;

  constructor(opts: TransportOptions = {}) {
    this.options = {
      timeoutMs: opts.timeoutMs ?? TRANSPORT_DEFAULTS.timeoutMs,
      retries: Math.max(0, opts.retries ?? TRANSPORT_DEFAULTS.retries),
      backoffMs: opts.backoffMs ?? TRANSPORT_DEFAULTS.backoffMs,
      maxBackoffMs: opts.maxBackoffMs ?? TRANSPORT_DEFAULTS.maxBackoffMs,
      concurrency: Math.max(1, opts.concurrency ?? TRANSPORT_DEFAULTS.concurrency),
      requestsPerSecond: opts.requestsPerSecond ?? TRANSPORT_DEFAULTS.requestsPerSecond,
      retry429: opts.retry429 ?? TRANSPORT_DEFAULTS.retry429,
    };
    this.#headers = { ...opts.headers };
    if (opts.auth) this.#headers["authorization"] = opts.auth;
    this.#slots = new Semaphore(this.options.concurrency);
  }

  /** Wait for the rate limit, then reserve the next start time. */
  async #paced(): Promise<void> {
    const rps = this.options.requestsPerSecond;
    if (!(rps > 0) || rps === Infinity) return;
    const now = performance.now();
    const at = Math.max(now, this.#nextStart);
    this.#nextStart = at + 1000 / rps;
    await sleep(at - now);
  }

  async #once<T>(
    url: string,
    req: EncodedRequest,
    parse: (bytes: Uint8Array, headers: Headers) => T,
  ): Promise<T> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.options.timeoutMs);
    try {
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers: { ...req.headers, ...this.#headers },
          body: req.body,
          signal: ctl.signal,
        });
      } catch (e) {
        if (ctl.signal.aborted) {
          throw new Attempt(`timed out after ${this.options.timeoutMs} ms`, "timeout", true);
        }
        throw new Attempt(`connection failed (${(e as Error).message})`, "network", true);
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        if (ctl.signal.aborted) {
          throw new Attempt(`timed out after ${this.options.timeoutMs} ms`, "timeout", true);
        }
        throw new Attempt(`connection broke mid-answer (${(e as Error).message})`, "network", true);
      }
      if (!res.ok) {
        const snippet = new TextDecoder().decode(bytes.subarray(0, 300)).slice(0, 200).replace(/\s+/g, " ");
        const s = res.status;
        if (s === 429 && this.options.retry429) {
          const ra = Number(res.headers.get("retry-after"));
          this.#retryAfterMs = Number.isFinite(ra) && ra > 0
            ? Math.min(ra * 1000, this.options.maxBackoffMs)
            : 0;
        }
        const hint = s === 401 || s === 403
          ? " (check the auth header)"
          : s === 404
          ? " (check the model name and protocol)"
          : "";
        throw new Attempt(
          `HTTP ${s}${hint}: ${snippet}`,
          "http",
          s >= 500 || (s === 429 && this.options.retry429),
          s,
        );
      }
      try {
        return parse(bytes, res.headers);
      } catch (e) {
        if (e instanceof ProtocolError) throw new Attempt(e.message, "protocol", false);
        throw e;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * POST `req` to `url` and return `parse(answer bytes, answer headers)` (a ProtocolError from `parse`
   * is a failed, non-retried attempt). Retries transient failures with
   * backoff; throws {@link RemoteError} when the request fails for good.
   */
  async post<T>(
    url: string,
    req: EncodedRequest,
    parse: (bytes: Uint8Array, headers: Headers) => T,
  ): Promise<T> {
    this.stats.requests++;
    await this.#slots.acquire();
    try {
      for (let attempt = 0;; attempt++) {
        await this.#paced();
        this.stats.attempts++;
        try {
          return await this.#once(url, req, parse);
        } catch (e) {
          if (!(e instanceof Attempt)) throw e;
          this.stats.failedAttempts++;
          const cause = e.kind === "http" ? `http ${e.status}` : e.kind;
          this.stats.byCause[cause] = (this.stats.byCause[cause] ?? 0) + 1;
          if (!e.retry || attempt >= this.options.retries) {
            this.stats.failedRequests++;
            const tries = attempt + 1;
            const why = e.retry ? ` (gave up after ${tries} attempts)` : "";
            throw new RemoteError(`POST ${url}: ${e.message}${why}`, e.kind, url, tries, e.status);
          }
          this.stats.retries++;
          const backoff = Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** attempt);
          await sleep(Math.max(backoff, this.#retryAfterMs));
          this.#retryAfterMs = 0;
        }
      }
    } finally {
      this.#slots.release();
    }
  }
}
