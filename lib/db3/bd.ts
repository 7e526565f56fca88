/**
 * BD — boundary distance (DB3, Wang 2021), label-only.
 *
 * For a sample x0 of class c and each target t ≠ c, every candidate x_i (an image of the sample's
 * class-t stream) gives a direction θ = (x_i − x0)/λ0 with λ0 = ||x_i − x0||; the boundary distance
 * g (λ in the paper) is the smallest λ found at which T(x0 + λθ) = t, to a bisection tolerance `tol`.
 *
 * The search per (sample, t) keeps a best-so-far g* (default: exact to `tol`, and lean):
 * 1. each candidate gets one probe at λp = min(λ0, g* − tol): if T(x0 + λp·θ) ≠ t it cannot improve g*
 *    by `tol` and is dropped (1 query; λp ≤ 0 drops it for free, e.g. when x0 is already labelled t).
 *    The probe also checks that the candidate's own endpoint is labelled t, which the reference
 *    assumes without asking.
 * 2. a passing candidate's boundary lies in (0, λp] — the reference re-bisects [0, λ0] instead,
 *    wasting the probe. Measured on MNIST, it most often lies just below λp, so the first split is
 *    at λp·(1 − skew) (skew 0.05, doubling after each "t" answer up to plain halving), and the
 *    bisection stops at a relative width `coarse` (1/32) — enough to prune the later candidates.
 * 3. at the end, while any coarsely bisected candidate has a lower bound more than `tol` below g*, the
 *    one with the lowest lower bound is bisected further. So g* < min over candidates of their
 *    boundary + tol: the same guarantee as bisecting every candidate to `tol` (on teachers whose
 *    target region is convex along each ray, as the reference's bisection also assumes).
 * On a 96%-accurate MNIST LeNet-5 this spends about 2,200 queries per sample against the reference
 * search's 2,880 (≈ 201 probes + 6 record-breaking candidates × 20 per class), with equal distances.
 *
 * `faithful: true` reproduces the reference search instead: no probe when λ0 ≤ g* (or for the first
 * candidate), probe at g* itself, full bisection on [0, λ0] after a passing probe (≈ 2,940 queries per
 * MNIST sample in the reference).
 *
 * All (sample, t) searches run in lockstep (see `lockstep.ts`), one label per search per round.
 * Phases booked: "bd.init" (T(x0), one query per sample, to report misclassified samples),
 * "bd.probe", "bd.search".
 */
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { checkChoice, checkNumbers, InputError } from "../util/checks.ts";
import { checkLockstepOptions, type LockstepOptions, runLockstep, type Search } from "./lockstep.ts";
import {
  candidatesFor,
  checkDb3Samples,
  type ClassStreams,
  type Db3Samples,
  l2Between,
  sampleDim,
  sampleIds,
} from "./streams.ts";

/** BD options (reference defaults). */
export interface BdOptions {
  /** Stream images tried per (sample, class); the reference loops `i = 0..200`, i.e. 201. */
  candidates?: number;
  /** Bisection tolerance on λ (stop when hi − lo < tol). */
  tol?: number;
  /** Candidate order: "stream" (the stream's seeded order, default) or "nearest" (ascending λ0). */
  order?: "nearest" | "stream";
  /** Relative width to which a passing candidate is bisected before moving on (0: to `tol` at once). */
  coarse?: number;
  /** First split of a passing candidate at λp·(1 − skew) (0.5: plain bisection). */
  skew?: number;
  /** Reproduce the reference search (see module doc); implies stream order. */
  faithful?: boolean;
  /** Ask T(x0) once per sample to flag misclassified samples (default true). */
  checkSamples?: boolean;
  /** Lockstep driver options (round size, lanes, progress). */
  lockstep?: LockstepOptions;
}

/** BD reference defaults. */
export const BD_DEFAULTS = {
  candidates: 201,
  tol: 1e-5,
  order: "stream" as "nearest" | "stream",
  coarse: 1 / 32,
  skew: 0.05,
  faithful: false,
  checkSamples: true,
};

/**
 * Check BD options up front (an {@link InputError} names the option and its range). `tol` must be at
 * least 1e-12: a bisection to a tolerance below float64 resolution never ends; `skew` must be > 0 (a
 * split at the top of the bracket would not shrink it).
 */
export function checkBdOptions(opts: BdOptions, where = "boundaryDistances"): void {
  checkNumbers(where, opts, {
    candidates: { integer: true, min: 1 },
    tol: { min: 1e-12 },
    coarse: { min: 0, max: 1 },
    skew: { above: 0, max: 0.5 },
  });
  checkChoice(where, "order", opts.order, ["nearest", "stream"]);
  checkLockstepOptions(opts.lockstep, where);
}

/** Check that `streams` fit the samples: one stream per class, images of the samples' size. */
export function checkStreams(streams: ClassStreams, samples: Db3Samples, where: string): void {
  const dim = sampleDim(samples);
  if (streams.dim !== dim || streams.byClass.length !== samples.numClasses) {
    throw new InputError(
      `${where}: class streams of ${streams.byClass.length} classes × ${streams.dim} values do not fit ` +
        `samples of ${samples.numClasses} classes × ${dim} values; ` +
        `build the streams from the samples' dataset`,
    );
  }
}

/** Result of one (sample, target) search. */
export interface BdPair {
  /** Best distance g* (Infinity if no candidate reached class t). */
  g: number;
  /** Pool index of the candidate that gave g* (−1 if none). */
  candidate: number;
  /** Its λ0 = ||x_candidate − x0||. */
  lambda0: number;
  /** Label queries spent. */
  queries: number;
  /** Stopped because the sample's budget refused a query. */
  exhausted: boolean;
}

/** Result of {@link boundaryDistances}. */
export interface BdResult {
  method: "bd";
  ids: Int32Array;
  y: Int32Array;
  numClasses: number;
  /** d[i·K + t] = g*; Infinity at the true class and where nothing was found. */
  distances: Float32Array;
  /** Pool index of the best candidate per (i, t), −1 if none (θ = (x_cand − x0)/λ0). */
  bestCandidate: Int32Array;
  /** λ0 of that candidate per (i, t). */
  lambda0: Float32Array;
  /** Label queries per (i, t), excluding the "bd.init" query. */
  queries: Int32Array;
  /** T(x0) per sample (−1 when not checked or refused). */
  teacherLabels: Int32Array;
  /** 1 where the teacher's label of x0 differs from y (its d_{T(x0)} ≈ tol: 1/d blows up). */
  misclassified: Uint8Array;
  /** 1 where a budget refusal cut the sample's searches short (distances are best-so-far). */
  exhausted: Uint8Array;
  /** The oracle ledger after the run. */
  ledger: LedgerSnapshot;
  options: Omit<typeof BD_DEFAULTS, never>;
}

/** Everything one pair search needs. */
interface PairInput {
  x0: Float32Array;
  x0o: number;
  pool: Float32Array;
  poolDim: number;
  dim: number;
  t: number;
  cands: Int32Array;
  lam0: Float64Array;
  tol: number;
  coarse: number;
  skew: number;
}

/** The image x0 + (λ/λ0)(x_c − x0) = x0 + λθ, written into dst. */
function writeOnRay(p: PairInput, c: number, lam: number, dst: Float32Array, off: number) {
  const s = lam / p.lam0[c];
  const po = p.cands[c] * p.poolDim;
  const x0 = p.x0, pool = p.pool, x0o = p.x0o;
  for (let k = 0; k < p.dim; k++) {
    const a = x0[x0o + k];
    dst[off + k] = a + s * (pool[po + k] - a);
  }
}

function ask(p: PairInput, c: number, lam: number, phase: string) {
  return { phase, m: 1, write: (dst: Float32Array, off: number) => writeOnRay(p, c, lam, dst, off) };
}

/** One (sample, target) search, lean exact version (see the module doc). */
function* leanSearch(p: PairInput): Search<BdPair> {
  let best = Infinity, bestC = -1, queries = 0;
  // Coarsely bisected candidates: c ∈ (lo, hi], hi labelled t, lo not (0 = x0 itself).
  const los: number[] = [], his: number[] = [], who: number[] = [];
  const stop = () => done(p, best, bestC, queries, true);
  for (let c = 0; c < p.cands.length; c++) {
    const l0 = p.lam0[c];
    if (!(l0 > 0)) continue;
    const probe = Math.min(l0, best - p.tol);
    if (!(probe > 0)) continue;
    const r = yield ask(p, c, probe, "bd.probe");
    if (r === null) return stop();
    queries++;
    if (r[0] !== p.t) continue;
    // Passed: its boundary is below the probe, most likely just below. Split near the top first
    // (hi·(1 − s), s doubling on each pass up to ½), then halve, down to a relative width `coarse`.
    let lo = 0, hi = probe, s = Number.isFinite(best) ? p.skew : 0.5;
    while (hi - lo >= Math.max(p.tol, p.coarse * hi)) {
      const mid = lo === 0 && s < 0.5 ? hi * (1 - s) : (lo + hi) / 2;
      const q = yield ask(p, c, mid, "bd.search");
      if (q === null) {
        if (hi < best) [best, bestC] = [hi, c];
        return stop();
      }
      queries++;
      if (q[0] === p.t) {
        hi = mid;
        s = Math.min(0.5, 2 * s);
      } else lo = mid;
    }
    los.push(lo);
    his.push(hi);
    who.push(c);
    if (hi < best) [best, bestC] = [hi, c];
  }
  // Refine: while some candidate may still lie more than tol below the best, bisect the one with the
  // lowest lower bound. Ends with best < min over candidates of their boundary + tol.
  for (;;) {
    let j = -1;
    for (let q = 0; q < los.length; q++) {
      if (los[q] < best - p.tol && (j < 0 || los[q] < los[j])) j = q;
    }
    if (j < 0) break;
    const mid = (los[j] + Math.min(his[j], best)) / 2;
    const q = yield ask(p, who[j], mid, "bd.search");
    if (q === null) return stop();
    queries++;
    if (q[0] === p.t) {
      his[j] = mid;
      if (mid < best) [best, bestC] = [mid, who[j]];
    } else los[j] = mid;
  }
  return done(p, best, bestC, queries, false);
}

/** One (sample, target) search as the reference code runs it. */
function* faithfulSearch(p: PairInput): Search<BdPair> {
  let best = Infinity, bestC = -1, queries = 0;
  for (let c = 0; c < p.cands.length; c++) {
    const l0 = p.lam0[c];
    if (l0 > best) {
      const r = yield ask(p, c, best, "bd.probe");
      if (r === null) return done(p, best, bestC, queries, true);
      queries++;
      if (r[0] !== p.t) continue;
    }
    let lo = 0, hi = l0;
    do {
      const mid = (lo + hi) / 2;
      const q = yield ask(p, c, mid, "bd.search");
      if (q === null) return done(p, best, bestC, queries, true);
      queries++;
      if (q[0] === p.t) hi = mid;
      else lo = mid;
    } while (hi - lo >= p.tol);
    if (hi < best) [best, bestC] = [hi, c];
  }
  return done(p, best, bestC, queries, false);
}

function done(p: PairInput, g: number, c: number, queries: number, exhausted: boolean): BdPair {
  return { g, candidate: c < 0 ? -1 : p.cands[c], lambda0: c < 0 ? NaN : p.lam0[c], queries, exhausted };
}

/** Candidates of one pair with their λ0, in search order. */
export function orderedCandidates(
  samples: Db3Samples,
  i: number,
  id: number,
  streams: ClassStreams,
  t: number,
  count: number,
  order: "nearest" | "stream",
): { cands: Int32Array; lam0: Float64Array } {
  const dim = sampleDim(samples);
  const raw = candidatesFor(streams, id, t, count);
  const l = Float64Array.from(raw, (j) => l2Between(streams.x, j * streams.dim, samples.x, i * dim, dim));
  if (order === "stream") return { cands: raw, lam0: l };
  const idx = Array.from(raw.keys()).sort((a, b) => l[a] - l[b] || a - b);
  return { cands: Int32Array.from(idx, (k) => raw[k]), lam0: Float64Array.from(idx, (k) => l[k]) };
}

/** Labels of x0 for every sample (phase "bd.init"); −1 where refused. */
export async function teacherLabelsOf(oracle: LabelOracle, samples: Db3Samples, phase = "bd.init") {
  const n = samples.y.length, dim = sampleDim(samples);
  const a = await oracle.labels(samples.x.subarray(0, n * dim), n, { phase, sampleIds: sampleIds(samples) });
  return a.labels;
}

/** Boundary distances d (n×K) for every sample and other class. */
export async function boundaryDistances(
  oracle: LabelOracle,
  samples: Db3Samples,
  streams: ClassStreams,
  opts: BdOptions = {},
): Promise<BdResult> {
  checkBdOptions(opts);
  checkDb3Samples(samples, "boundaryDistances samples", oracle);
  checkStreams(streams, samples, "boundaryDistances");
  const o = {
    candidates: opts.candidates ?? BD_DEFAULTS.candidates,
    tol: opts.tol ?? BD_DEFAULTS.tol,
    order: opts.faithful ? "stream" as const : opts.order ?? BD_DEFAULTS.order,
    coarse: opts.coarse ?? BD_DEFAULTS.coarse,
    skew: opts.skew ?? BD_DEFAULTS.skew,
    faithful: opts.faithful ?? BD_DEFAULTS.faithful,
    checkSamples: opts.checkSamples ?? BD_DEFAULTS.checkSamples,
  };
  const ids = sampleIds(samples);
  const n = samples.y.length, k = samples.numClasses, dim = sampleDim(samples);
  const teacherLabels = o.checkSamples ? await teacherLabelsOf(oracle, samples) : new Int32Array(n).fill(-1);
  const searches: Search<BdPair>[] = [];
  const pairOf: number[] = [];
  const owner: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      if (t === samples.y[i]) continue;
      const { cands, lam0 } = orderedCandidates(samples, i, ids[i], streams, t, o.candidates, o.order);
      const p: PairInput = {
        x0: samples.x,
        x0o: i * dim,
        pool: streams.x,
        poolDim: streams.dim,
        dim,
        t,
        cands,
        lam0,
        tol: o.tol,
        coarse: o.coarse,
        skew: o.skew,
      };
      searches.push(o.faithful ? faithfulSearch(p) : leanSearch(p));
      pairOf.push(i * k + t);
      owner.push(ids[i]);
    }
  }
  const pairs = await runLockstep(oracle, searches, Int32Array.from(owner), opts.lockstep);
  const distances = new Float32Array(n * k).fill(Infinity);
  const bestCandidate = new Int32Array(n * k).fill(-1);
  const lambda0 = new Float32Array(n * k).fill(NaN);
  const queries = new Int32Array(n * k);
  const exhausted = new Uint8Array(n);
  pairs.forEach((r, j) => {
    const at = pairOf[j];
    distances[at] = r.g;
    bestCandidate[at] = r.candidate;
    lambda0[at] = r.lambda0;
    queries[at] = r.queries;
    if (r.exhausted) exhausted[Math.floor(at / k)] = 1;
  });
  const misclassified = Uint8Array.from(teacherLabels, (l, i) => (l >= 0 && l !== samples.y[i] ? 1 : 0));
  return {
    method: "bd",
    ids,
    y: samples.y,
    numClasses: k,
    distances,
    bestCandidate,
    lambda0,
    queries,
    teacherLabels,
    misclassified,
    exhausted,
    ledger: oracle.ledger.snapshot(),
    options: o,
  };
}
