/**
 * MBD — minimal boundary distance (DB3, Wang 2021): refine each BD result (θ direction, g distance)
 * with a targeted Sign-OPT search (Cheng et al. 2020), label-only.
 *
 * Per iteration and (sample, target t):
 * - gradient sign estimate: K_grad directions u ~ N(0, I) scaled to ||u|| = β (smoothing);
 *   θ' = normalize(θ + u); s = −1 if T(x0 + g·θ') = t else +1; G = Σ s·u (not divided by K_grad, as
 *   in the reference's targeted version). Phase "mbd.grad".
 * - step: θ_new = normalize(θ − α·G); g_new by a local line search from the current best g: one query
 *   at g; if the label is t, shrink lo by ×0.99 while still t, then bisect to β/500. If it is not t
 *   the new direction cannot beat g and the try stops there (the reference expands hi by ×1.01 up to
 *   100 and bisects anyway, only to reject the result). Phase "mbd.line".
 * - step size α: tried, then doubled while the try improves (≤ 15 tries); if none improved, quartered
 *   until one improves (≤ 15 tries). When α < 1e-4: α = 1 and β ×= 0.1; stop when β < 1e-8, after
 *   `maxIterations`, or when the (sample, t) query limit would be crossed. α and β are per search.
 *
 * The query limit is exact and per (sample, t) (counting the BD queries that found θ, as the reference
 * does): a search never asks for more. Snapshots of g are taken as the best distance reached with at
 * most q queries, for each q in `snapshotAt`.
 *
 * Pairs whose BD distance is already ≤ `skipBelow` (1e-4: x0 is on or across the boundary, typically
 * a sample the teacher misclassifies as t) are not refined; `skipBelow: 0` refines them as the
 * reference does (spending the whole limit to shrink 1e-5 towards 0); `faithful` implies it.
 *
 * `faithful: true` reproduces, per search, the reference's behaviour: θ/g aliasing (doubling tries
 * step from the already-updated θ, and the quartering loop always runs, comparing against the updated
 * g), the ×1.01 expansion and bisection when the first line-search label is not t, and lo-only
 * shrinking. Two reference behaviours couple the samples of a batch and are not reproduced: α shared
 * across the batch, and the query limit compared with the batch *mean* of queries (so some samples
 * overspend it).
 */
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { Rng } from "../util/rng.ts";
import { checkNumberList, checkNumbers, checkSeed } from "../util/checks.ts";
import { type BdOptions, type BdResult, boundaryDistances, checkBdOptions, checkStreams } from "./bd.ts";
import {
  checkLockstepOptions,
  type LockstepOptions,
  type Reply,
  runLockstep,
  type Search,
} from "./lockstep.ts";
import { fillStandardNormal } from "./normal.ts";
import { checkDb3Samples, type ClassStreams, type Db3Samples, sampleDim, sampleIds } from "./streams.ts";

/** MBD options (reference defaults). */
export interface MbdOptions {
  /** K_grad: random directions per gradient estimate. */
  kGrad?: number;
  /** α: initial step size. */
  alpha?: number;
  /** β: initial smoothing radius (norm of u). */
  beta?: number;
  /** Query limit per (sample, class), BD queries included. */
  queryLimit?: number;
  /** Count the BD queries of the pair against `queryLimit` (reference: yes). */
  includeBdQueries?: boolean;
  /** Maximum Sign-OPT iterations. */
  maxIterations?: number;
  /** Query counts at which g is snapshotted (best g reached within that many queries). */
  snapshotAt?: number[];
  /** Reproduce the per-search reference behaviours listed in the module doc. */
  faithful?: boolean;
  /** Seed of the random directions (each pair derives its own stream from it and its ids). */
  seed?: number;
  /** Do not refine pairs whose BD distance is already ≤ this (x0 sits on or across the boundary, e.g.
   * a sample the teacher misclassifies as t; refining would only shrink 1e-5 towards 0 and spend the
   * whole query limit). 0 refines everything, like the reference. */
  skipBelow?: number;
  /** BD options for the initialisation (when no BD result is passed). */
  bd?: BdOptions;
  /** Lockstep driver options. */
  lockstep?: LockstepOptions;
}

/** MBD reference defaults. */
export const MBD_DEFAULTS = {
  kGrad: 200,
  alpha: 0.2,
  beta: 1e-3,
  queryLimit: 20000,
  includeBdQueries: true,
  maxIterations: 5000,
  snapshotAt: [1000, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000],
  faithful: false,
  seed: 0,
  skipBelow: 1e-4,
};

/**
 * Check MBD options up front (an `InputError` names the option and its range). β must be ≥ 1e-10 so
 * the line search's tolerance β/500 stays above float64 resolution.
 */
export function checkMbdOptions(opts: MbdOptions, where = "minimalBoundaryDistances"): void {
  checkNumbers(where, opts, {
    kGrad: { integer: true, min: 1 },
    alpha: { above: 0 },
    beta: { min: 1e-10 },
    queryLimit: { integer: true, min: 0, infinite: true },
    maxIterations: { integer: true, min: 0, infinite: true },
    skipBelow: { min: 0 },
  });
  checkNumberList(where, "snapshotAt", opts.snapshotAt, { integer: true, min: 0 });
  if (opts.seed !== undefined) checkSeed(opts.seed, where);
  if (opts.bd) checkBdOptions(opts.bd, `${where} (bd options)`);
  checkLockstepOptions(opts.lockstep, where);
}

/** Why a search stopped. */
export type MbdStop = "limit" | "converged" | "iterations" | "budget" | "no-start" | "at-boundary";

/** Result of one (sample, t) refinement. */
export interface MbdPair {
  g: number;
  queries: number;
  iterations: number;
  stop: MbdStop;
  /** g at each snapshot threshold. */
  snapshots: Float32Array;
  /** Final unit direction θ (only when `keepDirections`). */
  theta?: Float32Array;
}

/** Result of {@link minimalBoundaryDistances}. */
export interface MbdResult {
  method: "mbd";
  ids: Int32Array;
  y: Int32Array;
  numClasses: number;
  /** d[i·K + t] after refinement; Infinity at the true class. */
  distances: Float32Array;
  /** Queries per (i, t), BD included when `includeBdQueries`. */
  queries: Int32Array;
  /** Iterations per (i, t). */
  iterations: Int32Array;
  /** Stop reason per (i, t) ("" at the true class). */
  stops: string[];
  /** snapshots.distances[s][i·K + t] = g within snapshots.queries[s] queries. */
  snapshots: { queries: number[]; distances: Float32Array[] };
  /** The BD initialisation (distances before refinement). */
  bd: BdResult;
  teacherLabels: Int32Array;
  misclassified: Uint8Array;
  exhausted: Uint8Array;
  ledger: LedgerSnapshot;
  options: Omit<typeof MBD_DEFAULTS, never>;
}

interface MbdInput {
  x0: Float32Array;
  x0o: number;
  dim: number;
  t: number;
  theta: Float32Array;
  g: number;
  used: number;
  rng: Rng;
  o: typeof MBD_DEFAULTS;
}

function normalizeInto(dst: Float32Array, src: Float32Array): Float32Array {
  let s = 0;
  for (let k = 0; k < src.length; k++) s += src[k] * src[k];
  const inv = 1 / Math.sqrt(s);
  for (let k = 0; k < src.length; k++) dst[k] = src[k] * inv;
  return dst;
}

/** θ_new = normalize(θ − α·G). */
function stepDirection(theta: Float32Array, alpha: number, grad: Float32Array): Float32Array {
  const out = new Float32Array(theta.length);
  for (let k = 0; k < theta.length; k++) out[k] = theta[k] - alpha * grad[k];
  return normalizeInto(out, out);
}

/** Ask for the label of x0 + λθ. */
function rayAsk(p: MbdInput, theta: Float32Array, lam: number) {
  return {
    phase: "mbd.line",
    m: 1,
    write(dst: Float32Array, off: number) {
      for (let k = 0; k < p.dim; k++) dst[off + k] = p.x0[p.x0o + k] + lam * theta[k];
    },
  };
}

/** Mutable per-search bookkeeping shared by the helpers. */
interface State {
  used: number;
  best: number;
  snapIdx: number;
  snaps: Float32Array;
  stopped: MbdStop | null;
}

/** Before spending m queries: record snapshots that m more queries would overshoot; false if the limit forbids. */
function canSpend(p: MbdInput, s: State, m: number): boolean {
  const at = p.o.snapshotAt;
  while (s.snapIdx < at.length && s.used + m > at[s.snapIdx]) s.snaps[s.snapIdx++] = s.best;
  if (s.used + m > p.o.queryLimit) {
    s.stopped = "limit";
    return false;
  }
  return true;
}

/**
 * Local line search along θn from g0. Returns the new distance (a point labelled t), Infinity when θn
 * cannot beat g0, or the best verified point when the search had to stop (s.stopped set).
 */
function* lineSearch(p: MbdInput, s: State, theta: Float32Array, g0: number, tol: number): Generator<
  ReturnType<typeof rayAsk>,
  number,
  Reply
> {
  const query = function* (lam: number): Generator<ReturnType<typeof rayAsk>, number, Reply> {
    if (!canSpend(p, s, 1)) return -1;
    const r = yield rayAsk(p, theta, lam);
    if (r === null) {
      s.stopped = "budget";
      return -1;
    }
    s.used++;
    return r[0];
  };
  const first = yield* query(g0);
  if (first < 0) return Infinity;
  let lo: number, hi: number;
  if (first !== p.t) {
    if (!p.o.faithful) return Infinity;
    // Reference: expand hi by ×1.01 until labelled t (give up above 100), then bisect from lo = 0.
    lo = 0;
    hi = g0 * 1.01;
    for (;;) {
      const l = yield* query(hi);
      if (l < 0) return Infinity;
      if (l === p.t) break;
      hi *= 1.01;
      if (hi > 100) return Infinity;
    }
  } else {
    hi = g0;
    lo = g0 * 0.99;
    for (;;) {
      const l = yield* query(lo);
      if (l < 0) return hi;
      if (l !== p.t) break;
      if (!p.o.faithful) hi = lo;
      lo *= 0.99;
    }
  }
  while (hi - lo > tol) {
    const mid = (lo + hi) / 2;
    const l = yield* query(mid);
    if (l < 0) return hi;
    if (l === p.t) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** One (sample, t) Sign-OPT refinement. */
function* signOpt(p: MbdInput, keepTheta: boolean): Search<MbdPair> {
  const { dim, o } = p;
  const K = o.kGrad;
  const s: State = {
    used: p.used,
    best: p.g,
    snapIdx: 0,
    snaps: new Float32Array(o.snapshotAt.length).fill(NaN),
    stopped: null,
  };
  let theta = p.theta, g = p.g, alpha = o.alpha, beta = o.beta, it = 0;
  const finish = (stop: MbdStop): MbdPair => {
    s.best = g;
    while (s.snapIdx < s.snaps.length) s.snaps[s.snapIdx++] = g;
    return {
      g,
      queries: s.used,
      iterations: it,
      stop,
      snapshots: s.snaps,
      theta: keepTheta ? theta : undefined,
    };
  };
  if (!Number.isFinite(g)) return finish("no-start");
  if (g <= o.skipBelow) return finish("at-boundary");
  const grad = new Float32Array(dim);
  for (; it < o.maxIterations; it++) {
    if (!canSpend(p, s, K)) return finish("limit");
    // Gradient sign estimate (directions drawn when the ask is served, kept until the reply).
    let U: Float32Array | null = null;
    const base = theta, gg = g;
    const labels = yield {
      phase: "mbd.grad",
      m: K,
      write(dst: Float32Array, off: number) {
        U = fillStandardNormal(p.rng, new Float32Array(K * dim));
        writeGradImages(p.x0, p.x0o, base, gg, U, K, dim, beta, dst, off);
      },
    };
    if (labels === null) return finish("budget");
    s.used += K;
    grad.fill(0);
    const u = U as unknown as Float32Array;
    for (let k = 0; k < K; k++) {
      const sign = labels[k] === p.t ? -1 : 1;
      const uo = k * dim;
      for (let j = 0; j < dim; j++) grad[j] += sign * u[uo + j];
    }
    U = null;
    // Line search over α.
    let bestTheta = theta, bestG = g, improved = false;
    let stepBase = theta;
    const tol = beta / 500;
    for (let tr = 0; tr < 15; tr++) {
      const cand = stepDirection(stepBase, alpha, grad);
      const gn = yield* lineSearch(p, s, cand, bestG, tol);
      alpha *= 2;
      if (!(gn < bestG)) break;
      bestTheta = cand;
      bestG = s.best = gn;
      improved = true;
      if (o.faithful) stepBase = cand; // θ/g aliasing: the next try steps from the updated θ
      if (s.stopped) break;
    }
    // Quartering: only when doubling found nothing (faithful: always, against the updated g).
    if (!s.stopped && (!improved || o.faithful)) {
      const ref = bestG;
      for (let tr = 0; tr < 15; tr++) {
        alpha *= 0.25;
        const cand = stepDirection(stepBase, alpha, grad);
        const gn = yield* lineSearch(p, s, cand, ref, tol);
        if (gn < ref) {
          bestTheta = cand;
          bestG = s.best = gn;
          break;
        }
        if (s.stopped) break;
      }
    }
    theta = bestTheta;
    g = bestG;
    if (s.stopped) return finish(s.stopped);
    if (alpha < 1e-4) {
      alpha = 1;
      beta *= 0.1;
      if (beta < 1e-8) {
        it++;
        return finish("converged");
      }
    }
  }
  return finish("iterations");
}

/**
 * Write the K_grad query images x0 + g·normalize(θ + u_k), after scaling each u_k (in place) to norm β.
 */
function writeGradImages(
  x0: Float32Array,
  x0o: number,
  theta: Float32Array,
  g: number,
  U: Float32Array,
  K: number,
  dim: number,
  beta: number,
  dst: Float32Array,
  off: number,
) {
  for (let k = 0; k < K; k++) {
    const uo = k * dim;
    let uu = 0, tu = 0;
    for (let j = 0; j < dim; j++) {
      const v = U[uo + j];
      uu += v * v;
      tu += theta[j] * v;
    }
    const scale = beta / Math.sqrt(uu);
    // ||θ + u||² = 1 + 2θ·u + ||u||² with ||θ|| = 1 and u scaled to β.
    const nrm = Math.sqrt(1 + 2 * scale * tu + beta * beta);
    const a = g / nrm;
    const d = off + k * dim;
    for (let j = 0; j < dim; j++) {
      const v = U[uo + j] * scale;
      U[uo + j] = v;
      dst[d + j] = x0[x0o + j] + a * (theta[j] + v);
    }
  }
}

/**
 * Minimal boundary distances: BD (or the given BD result) refined by targeted Sign-OPT for every
 * sample and other class.
 */
export async function minimalBoundaryDistances(
  oracle: LabelOracle,
  samples: Db3Samples,
  streams: ClassStreams,
  opts: MbdOptions & { init?: BdResult; keepDirections?: boolean } = {},
): Promise<MbdResult> {
  checkMbdOptions(opts);
  checkDb3Samples(samples, "minimalBoundaryDistances samples", oracle);
  checkStreams(streams, samples, "minimalBoundaryDistances");
  const o = { ...MBD_DEFAULTS };
  for (const key of Object.keys(MBD_DEFAULTS) as (keyof typeof MBD_DEFAULTS)[]) {
    if (opts[key] !== undefined) (o as Record<string, unknown>)[key] = opts[key];
  }
  if (o.faithful && opts.skipBelow === undefined) o.skipBelow = 0;
  const bd = opts.init ??
    await boundaryDistances(oracle, samples, streams, { ...opts.bd, lockstep: opts.lockstep });
  const ids = sampleIds(samples);
  const n = samples.y.length, k = samples.numClasses, dim = sampleDim(samples);
  const searches: Search<MbdPair>[] = [];
  const at: number[] = [];
  const owner: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      if (t === samples.y[i]) continue;
      const j = i * k + t;
      const c = bd.bestCandidate[j];
      const theta = new Float32Array(dim);
      if (c >= 0) {
        for (let q = 0; q < dim; q++) theta[q] = streams.x[c * streams.dim + q] - samples.x[i * dim + q];
        normalizeInto(theta, theta);
      }
      const rng = new Rng(((o.seed * 0x27d4eb2d) ^ (ids[i] * 0x165667b1) ^ (t * 0x9e3779b1)) >>> 0);
      searches.push(signOpt({
        x0: samples.x,
        x0o: i * dim,
        dim,
        t,
        theta,
        g: c >= 0 ? bd.distances[j] : Infinity,
        used: o.includeBdQueries ? bd.queries[j] : 0,
        rng,
        o,
      }, opts.keepDirections ?? false));
      at.push(j);
      owner.push(ids[i]);
    }
  }
  const pairs = await runLockstep(oracle, searches, Int32Array.from(owner), opts.lockstep);
  const distances = new Float32Array(n * k).fill(Infinity);
  const queries = new Int32Array(n * k);
  const iterations = new Int32Array(n * k);
  const stops = new Array<string>(n * k).fill("");
  const snaps = o.snapshotAt.map(() => new Float32Array(n * k).fill(Infinity));
  const exhausted = Uint8Array.from(bd.exhausted);
  pairs.forEach((r, q) => {
    const j = at[q];
    distances[j] = r.g;
    queries[j] = r.queries;
    iterations[j] = r.iterations;
    stops[j] = r.stop;
    r.snapshots.forEach((v, s) => (snaps[s][j] = v));
    if (r.stop === "budget") exhausted[Math.floor(j / k)] = 1;
  });
  return {
    method: "mbd",
    ids,
    y: samples.y,
    numClasses: k,
    distances,
    queries,
    iterations,
    stops,
    snapshots: { queries: [...o.snapshotAt], distances: snaps },
    bd,
    teacherLabels: bd.teacherLabels,
    misclassified: bd.misclassified,
    exhausted,
    ledger: oracle.ledger.snapshot(),
    options: o,
  };
}
