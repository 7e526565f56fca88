/**
 * A label oracle for teachers that charge per query (remote APIs): cache first, pay for the rest,
 * count paid, cached and failed separately.
 *
 * Composition around the kit's `Ledger`, which keeps owning budgets and per-phase/per-sample counts:
 *
 * 1. inputs are clamped to [0,1] (as `labelOracle` does) and keyed by the SHA-256 of their exact
 *    float32 bytes; images found in the {@link LabelCache} are answered for free (cache hits are not
 *    booked in the ledger and do not touch budgets);
 * 2. the remaining images are reserved in the ledger (`Ledger.reserve`: per sample, all-or-nothing
 *    within a request, in order of first appearance) before anything is sent — journaled to disk
 *    when the ledger has a journal — so concurrent calls can never overshoot a budget and a kill
 *    cannot lose a paid query;
 * 3. admitted images are sent; each answered batch is settled in the ledger and appended to the cache
 *    at once. Images of a batch that fails for good are released: the ledger counts exactly the
 *    images the teacher answered (plus, after a kill, the reserved ones whose answer never arrived,
 *    reported as `reservedUnsettled`). Failed attempts are counted by the transport.
 *
 * So after any run, interrupted or not, `ledger` totals equal the images the server answered, and a
 * rerun over the same images costs nothing. {@link RemoteLabelOracle.usage} reports paid / cache hits
 * / refused per phase and the transport's failed attempts.
 *
 * @module
 */
import { checkQueryImages } from "../oracle/admission.ts";
import { Ledger } from "../oracle/ledger.ts";
import {
  type LabelAnswer,
  type LabelOracle,
  type LabelPredictor,
  OracleError,
  type QueryTag,
} from "../oracle/oracle.ts";
import type { BatchCallback } from "./client.ts";
import { RemoteTeacher, type RemoteTeacherOptions } from "./client.ts";
import { imageKeys, LabelCache } from "./cache.ts";
import type { TransportStats } from "./http.ts";

/** Counts of one phase. */
export interface UsageEntry {
  /** Images answered by the teacher (booked in the ledger). */
  paid: number;
  /** Images answered from the cache (free). */
  cacheHits: number;
  /** Images refused by a budget (not sent). */
  refused: number;
}

/** What a cached oracle has done so far. */
export interface RemoteUsage extends UsageEntry {
  byPhase: Record<string, UsageEntry>;
  /** Transport counters (zero for a non-HTTP predictor). */
  requests: number;
  attempts: number;
  failedAttempts: number;
  retries: number;
  failedRequests: number;
  failuresByCause: Record<string, number>;
  /** Entries in the persistent cache (all runs), and those found when it was opened. */
  cacheSize: number;
  cacheLoaded: number;
}

/** Options of {@link cachedLabelOracle}. */
export interface CachedOracleOptions {
  /** Image shape (default: the predictor's spec). */
  inputShape?: number[];
  /** Number of classes (default: the predictor's spec). */
  numClasses?: number;
  /** Ledger for paid queries and budgets (default: a fresh unlimited one). */
  ledger?: Ledger;
  /** Persistent cache (default: none). */
  cache?: LabelCache;
}

/** A predictor that reports answered batches as they arrive (e.g. {@link RemoteTeacher}). */
interface BatchingPredictor extends LabelPredictor {
  predictBatches(x: Float32Array, n: number, onBatch?: BatchCallback): Promise<Int32Array>;
  readonly stats?: TransportStats;
}

function clampCopy(x: Float32Array, len: number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    const v = x[i];
    out[i] = v > 0 ? (v < 1 ? v : 1) : 0; // NaN never gets here (checkQueryImages rejects it)
  }
  return out;
}

function zero(): UsageEntry {
  return { paid: 0, cacheHits: 0, refused: 0 };
}

/** See the module doc. */
export class RemoteLabelOracle implements LabelOracle {
  readonly access = "label" as const;
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly ledger: Ledger;
  readonly cache: LabelCache | undefined;
  readonly #teacher: LabelPredictor;
  readonly #dim: number;
  readonly #usage = new Map<string, UsageEntry>();

  constructor(teacher: LabelPredictor, opts: CachedOracleOptions = {}) {
    const inputShape = opts.inputShape ?? teacher.spec?.inputShape;
    const numClasses = opts.numClasses ?? teacher.spec?.numClasses;
    if (!inputShape || !numClasses) throw new Error("cachedLabelOracle: needs inputShape and numClasses");
    this.inputShape = [...inputShape];
    this.numClasses = numClasses;
    this.ledger = opts.ledger ?? new Ledger();
    this.cache = opts.cache;
    this.#teacher = teacher;
    this.#dim = inputShape.reduce((a, b) => a * b, 1);
  }

  #entry(phase: string): UsageEntry {
    let e = this.#usage.get(phase);
    if (!e) this.#usage.set(phase, e = zero());
    return e;
  }

  async labels(x: Float32Array, n: number, q: QueryTag): Promise<LabelAnswer> {
    const d = this.#dim;
    checkQueryImages(x, n, d, q.sampleIds, `remote label oracle, phase ${q.phase}`);
    const usage = this.#entry(q.phase);
    const xc = clampCopy(x, n * d);
    const labels = new Int32Array(n).fill(-1);
    const refused = new Uint8Array(n);
    const keys = this.cache ? imageKeys(xc, n, d) : undefined;
    // 1. cache
    const miss: number[] = [];
    for (let i = 0; i < n; i++) {
      const hit = keys ? this.cache!.get(keys[i]) : undefined;
      if (hit !== undefined) labels[i] = hit;
      else miss.push(i);
    }
    usage.cacheHits += n - miss.length;
    if (miss.length === 0) return { labels, refused };
    // 2. budgets: reserved (journaled, when the ledger has a journal) before anything is sent
    const missIds = q.sampleIds ? Int32Array.from(miss, (i) => q.sampleIds![i]) : undefined;
    const res = this.ledger.reserve({ kinds: ["label"], phase: q.phase, n: miss.length, sampleIds: missIds });
    const send: number[] = [];
    miss.forEach((i, j) => {
      if (res.refused[j]) refused[i] = 1;
      else send.push(i);
    });
    usage.refused += miss.length - send.length;
    const m = send.length;
    if (m === 0) return { labels, refused };
    const xs = new Float32Array(m * d);
    send.forEach((i, j) => xs.set(xc.subarray(i * d, (i + 1) * d), j * d));
    const ids = q.sampleIds ? Int32Array.from(send, (i) => q.sampleIds![i]) : undefined;
    // 3. pay, batch by batch: each answered batch is settled and cached at once
    let paid = 0;
    const answered = new Uint8Array(m);
    const writes: Promise<void>[] = [];
    const settle = (s: number, e: number, got: Int32Array) => {
      this.ledger.settle(res.ticket, e - s);
      for (let j = s; j < e; j++) {
        labels[send[j]] = got[j - s];
        answered[j] = 1;
      }
      paid += e - s;
      usage.paid += e - s;
      if (keys && this.cache) writes.push(this.cache.add(send.slice(s, e).map((i) => keys[i]), got));
    };
    const t = this.#teacher as BatchingPredictor;
    try {
      if (typeof t.predictBatches === "function") await t.predictBatches(xs, m, settle);
      else settle(0, m, await t.predictLabels(xs, m));
    } catch (err) {
      // Release what was reserved but never answered; nothing unanswered stays booked.
      const left = Array.from(answered.keys()).filter((j) => !answered[j]);
      this.ledger.release(res.ticket, ids ? Int32Array.from(left, (j) => ids[j]) : undefined, left.length);
      await Promise.allSettled(writes);
      throw new OracleError(
        `label teacher failed in phase ${q.phase} after ${paid} of ${m} images were answered: ` +
          `${(err as Error).message ?? err}`,
        q.phase,
        paid,
        { cause: err },
      );
    }
    await Promise.all(writes);
    return { labels, refused };
  }

  /** Paid / cache hits / refused (total and per phase) and the transport's failures. */
  usage(): RemoteUsage {
    const total = zero();
    const byPhase: Record<string, UsageEntry> = {};
    for (const [k, e] of this.#usage) {
      byPhase[k] = { ...e };
      total.paid += e.paid;
      total.cacheHits += e.cacheHits;
      total.refused += e.refused;
    }
    const s = (this.#teacher as BatchingPredictor).stats;
    return {
      ...total,
      byPhase,
      requests: s?.requests ?? 0,
      attempts: s?.attempts ?? 0,
      failedAttempts: s?.failedAttempts ?? 0,
      retries: s?.retries ?? 0,
      failedRequests: s?.failedRequests ?? 0,
      failuresByCause: { ...(s?.byCause ?? {}) },
      cacheSize: this.cache?.size ?? 0,
      cacheLoaded: this.cache?.loaded ?? 0,
    };
  }

  toJSON() {
    return { access: this.access, inputShape: this.inputShape, numClasses: this.numClasses };
  }
}

/** A label oracle with a persistent cache and paid/cached/failed accounting over any label predictor. */
export function cachedLabelOracle(
  teacher: LabelPredictor,
  opts: CachedOracleOptions = {},
): RemoteLabelOracle {
  return new RemoteLabelOracle(teacher, opts);
}

/** Options of {@link remoteLabelOracle}. */
export interface RemoteOracleOptions extends RemoteTeacherOptions {
  /** Cache root folder (one sub-folder per teacher identity); omitted: no cache. */
  cacheDir?: string;
  /** Ledger for paid queries and budgets. */
  ledger?: Ledger;
  /**
   * What identifies the teacher behind the endpoint beyond its model name and version (e.g. a
   * fingerprint of its weights, or the version string its owner publishes). Part of the cache key.
   */
  identity?: string;
}

/**
 * What the endpoint reports about its model (KServe v2 `GET /v2/models/{name}[/versions/{v}]`, TF
 * Serving `GET /v1/models/{name}[/versions/{v}]`), or `null` when it does not answer in time. Part of
 * the cache key, so a server that publishes a version or a fingerprint of its weights there keeps
 * caches of different teachers apart.
 */
export async function reportedModelIdentity(opts: RemoteOracleOptions): Promise<unknown> {
  const base = opts.url.replace(/\/+$/, "");
  const name = encodeURIComponent(opts.model);
  const version = opts.version ? `/versions/${encodeURIComponent(opts.version)}` : "";
  const path = (opts.protocol ?? "kserve-v2") === "kserve-v2" ? `/v2/models/${name}` : `/v1/models/${name}`;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) headers["authorization"] = opts.auth;
  try {
    const res = await fetch(`${base}${path}${version}`, {
      headers,
      signal: AbortSignal.timeout(Math.min(opts.timeoutMs ?? 5_000, 5_000)),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return await res.json();
  } catch {
    return null;
  }
}

/**
 * What keys a remote teacher's cache: the endpoint's model identity (model name, version, protocol,
 * tensor names, shapes, adapter, what the server reports about the model — see
 * {@link reportedModelIdentity} — and the optional `identity`) — not its host or port, so the cache
 * still hits after a restart on another port or through `localhost` instead of `127.0.0.1`.
 */
export function remoteCacheIdentity(
  teacher: RemoteTeacher,
  identity?: string,
  reported: unknown = null,
): Record<string, unknown> {
  const { url: _url, ...rest } = teacher.describe();
  return { ...rest, reported, identity: identity ?? null };
}

/**
 * A label-level oracle over a remote KServe v2 / TF Serving endpoint, with a persistent cache (when
 * `cacheDir` is set, keyed by {@link remoteCacheIdentity}) and exact paid/cached/failed accounting.
 * Scores the endpoint may return are reduced to labels in the client and never reach the oracle.
 */
export async function remoteLabelOracle(opts: RemoteOracleOptions): Promise<RemoteLabelOracle> {
  const teacher = new RemoteTeacher(opts);
  const cache = opts.cacheDir
    ? await LabelCache.open(
      opts.cacheDir,
      remoteCacheIdentity(teacher, opts.identity, await reportedModelIdentity(opts)),
    )
    : undefined;
  return new RemoteLabelOracle(teacher, { ledger: opts.ledger, cache });
}
