/**
 * Untargeted minimal boundary distance (ZSDB3KD, Wang 2021), label-only: for each sample x0 of
 * teacher class c, the smallest g (λ in the paper) and unit direction Θ such that T(x0 + gΘ) ≠ c.
 *
 * Three stages, all batched across samples through one label oracle and booked in its ledger:
 * 1. **Initial directions** ("zs.init"): for each of `initDirections` rounds, one shared random
 *    direction v = N(0, I)·s·U(0,1) (s = `initScale`, 4 in the reference) is tried on every sample
 *    whose label it has not yet changed, a fresh v per try, until every sample's label changed or
 *    `maxInitTries` tries were spent (the reference loops without bound and does not count these
 *    queries; here every one is booked). A sample still unchanged can start from the direction to
 *    the nearest `anchor` of another class (an image whose teacher label is already known, so the
 *    endpoint costs no query); without anchors its round yields nothing. With `anchorDirections` = k
 *    every sample also gets the directions to its k nearest anchors of other classes (a kit option;
 *    the reference uses random directions only).
 * 2. **Untargeted bisection** ("zs.bisect"): candidates nearest first, with the best-so-far g*
 *    (initially the nearest endpoint λ0, whose label is known to differ): if λ0 > g*, one query at
 *    g* (label c → the direction cannot beat g*, skip); then bisect [0, hi] until hi − lo < `tol`
 *    (1e-5): label ≠ c → hi = mid, else lo = mid.
 * 3. **Untargeted Sign-OPT** ("zs.grad", "zs.line"; Cheng 2020): K = `kGrad` (200) directions u
 *    scaled to ||u|| = β; θ' = normalize(Θ + u); s = −1 if T(x0 + g·θ') ≠ c else +1;
 *    G = (1/K) Σ s·u. Step Θ_new = normalize(Θ − α·G), g_new by a local line search from g (one
 *    query at g: label c → no improvement; else shrink lo while the label is not c — ×0.99 per query
 *    in the reference, a doubling cut by default — then bisect to β/500). α (0.2) doubles while it improves (≤ 15 tries), else quarters until it does
 *    (≤ 15 tries); α < 1e-4 → α = 1, β ×= 0.1, stop when β < 1e-8. α and β are per sample.
 *
 * `queryLimit` (5000 in the reference) caps the queries of each sample in one call, all three stages
 * included, and is never crossed: a search stops before an ask that would cross it. The oracle's
 * per-sample budget is honoured too (a refused ask ends that sample's search, stop = "budget").
 */
import type { LabelOracle } from "../oracle/oracle.ts";
import { checkLockstepOptions, type LockstepOptions, runLockstep, type Search } from "../db3/lockstep.ts";
import { fillStandardNormal } from "../db3/normal.ts";
import { checkLabels } from "../db3/streams.ts";
import { checkChoice, checkNumbers, checkSeed, InputError } from "../util/checks.ts";
import { Rng } from "../util/rng.ts";

/** Options of {@link untargetedBoundary} (reference defaults in {@link UNTARGETED_DEFAULTS}). */
export interface UntargetedOptions {
  /** Rounds of shared random initial directions (reference `num_directions` = 20). */
  initDirections?: number;
  /** Bound on shared random tries per round (the reference loops until every label changed). */
  maxInitTries?: number;
  /** s in v = N(0, I)·s·U(0, 1) (reference 4). */
  initScale?: number;
  /** Untargeted bisection tolerance on g. */
  tol?: number;
  /** K: random directions per Sign-OPT gradient estimate. */
  kGrad?: number;
  /** α: initial Sign-OPT step size. */
  alpha?: number;
  /** β: initial smoothing radius (norm of u). */
  beta?: number;
  /** Queries per sample in one call, all stages included (reference 5000). */
  queryLimit?: number;
  /** Most Sign-OPT iterations (reference 1000). */
  maxIterations?: number;
  /**
   * Also start from the directions to this many nearest `anchors` of other classes (their labels
   * are known, so a candidate costs only its bisection). 0 = the reference (random directions only).
   */
  anchorDirections?: number;
  /** Most shrink steps in one line search (bounds a loop the reference leaves open). */
  maxShrink?: number;
  /**
   * Line-search shrink: "reference" lowers lo by ×0.99 per query (hundreds of queries while the
   * direction is still far from the minimum); "doubling" (default) doubles the cut each time
   * (×0.99, ×0.98, ×0.96, …, at most halving), then bisects as usual — same result up to `tol`.
   */
  shrink?: "reference" | "doubling";
  /** Seed of the random directions. */
  seed?: number;
  /** Lockstep driver options (round size, lanes, progress). */
  lockstep?: LockstepOptions;
}

/** Reference defaults (`untargeted_mbd.py` as called by `get_pseudo_samples.py`). */
export const UNTARGETED_DEFAULTS = {
  initDirections: 20,
  maxInitTries: 1000,
  initScale: 4,
  tol: 1e-5,
  kGrad: 200,
  alpha: 0.2,
  beta: 1e-3,
  queryLimit: 5000,
  maxIterations: 1000,
  anchorDirections: 0,
  maxShrink: 500,
  shrink: "doubling" as "reference" | "doubling",
  seed: 0,
};

/** Images whose teacher labels are known (e.g. other pseudo samples): fallback initial directions. */
export interface Anchors {
  x: Float32Array;
  labels: Int32Array;
}

/** Why a sample's search ended. */
export type UntargetedStop = "limit" | "converged" | "iterations" | "budget" | "no-start";

/** Result of {@link untargetedBoundary}. */
export interface UntargetedResult {
  /** g per sample: distance to the nearest boundary found (Infinity when no direction left class c). */
  distances: Float32Array;
  /** Θ per sample (n × dim, unit norm; zeros where no direction was found). */
  directions: Float32Array;
  /** Label queries per sample, all stages. */
  queries: Int32Array;
  /** Of which spent on the shared random initial directions. */
  initQueries: Int32Array;
  /** Distance after initialisation and bisection, before Sign-OPT. */
  initDistances: Float32Array;
  /** Samples that needed an anchor direction in some round. */
  anchorStarts: Uint8Array;
  /** Sign-OPT iterations per sample. */
  iterations: Int32Array;
  /** Stop reason per sample. */
  stops: UntargetedStop[];
  /** Options in force. */
  options: Omit<typeof UNTARGETED_DEFAULTS, never>;
}

/**
 * Check untargeted-search options up front (an `InputError` names the option and its range); `tol`
 * and β ≥ 1e-12 / 1e-10 keep every bisection above float64 resolution, so it ends.
 */
export function checkUntargetedOptions(opts: UntargetedOptions, where = "untargetedBoundary"): void {
  checkNumbers(where, opts, {
    initDirections: { integer: true, min: 0 },
    maxInitTries: { integer: true, min: 0 },
    initScale: { above: 0 },
    tol: { min: 1e-12 },
    kGrad: { integer: true, min: 1 },
    alpha: { above: 0 },
    beta: { min: 1e-10 },
    queryLimit: { integer: true, min: 0, infinite: true },
    maxIterations: { integer: true, min: 0, infinite: true },
    anchorDirections: { integer: true, min: 0 },
    maxShrink: { integer: true, min: 0 },
  });
  checkChoice(where, "shrink", opts.shrink, ["reference", "doubling"]);
  if (opts.seed !== undefined) checkSeed(opts.seed, where);
  checkLockstepOptions(opts.lockstep, where);
}

function resolve(opts: UntargetedOptions): typeof UNTARGETED_DEFAULTS {
  const o: Record<string, unknown> = { ...UNTARGETED_DEFAULTS };
  for (const k of Object.keys(UNTARGETED_DEFAULTS) as (keyof typeof UNTARGETED_DEFAULTS)[]) {
    if (opts[k] !== undefined) o[k] = opts[k];
  }
  return o as typeof UNTARGETED_DEFAULTS;
}

function norm(a: Float32Array, off: number, dim: number): number {
  let s = 0;
  for (let k = 0; k < dim; k++) s += a[off + k] * a[off + k];
  return Math.sqrt(s);
}

/** Per-sample state carried from the batched initialisation into the lockstep search. */
interface Candidate {
  theta: Float32Array;
  lambda0: number;
}

/**
 * Stage 1: shared random directions, rounds × tries, batched over the samples still unchanged.
 * Returns the candidate directions of each sample and the queries each spent.
 */
async function initialDirections(
  oracle: LabelOracle,
  x: Float32Array,
  y: Int32Array,
  ids: Int32Array,
  dim: number,
  o: typeof UNTARGETED_DEFAULTS,
  rng: Rng,
  anchors: Anchors | undefined,
  spent: Int32Array,
  refusedOut: Uint8Array,
  anchorStarts: Uint8Array,
): Promise<Candidate[][]> {
  const n = y.length;
  const cands: Candidate[][] = Array.from({ length: n }, () => []);
  const v = new Float32Array(dim);
  // A sample gets the anchor fallback once, the first round it ends unchanged.
  const anchored = new Uint8Array(n);
  for (let round = 0; round < o.initDirections; round++) {
    // Round 0 draws from `rng`; every later round from its own stream, so the directions a sample
    // sees never depend on when the other samples of the batch stopped (a split of the batch into
    // shards gives every sample the same tries).
    if (round > 0) rng = new Rng(((o.seed ^ 0x2545f491) + Math.imul(round, 0x9e3779b1)) >>> 0);
    let pending: number[] = [];
    for (let i = 0; i < n; i++) if (!refusedOut[i] && spent[i] < o.queryLimit) pending.push(i);
    for (let tryNo = 0; tryNo < o.maxInitTries && pending.length > 0; tryNo++) {
      const s = rng.uniform() * o.initScale;
      fillStandardNormal(rng, v);
      for (let k = 0; k < dim; k++) v[k] *= s;
      const vn = norm(v, 0, dim);
      if (!(vn > 0)) continue;
      const batch = new Float32Array(pending.length * dim);
      pending.forEach((i, j) => {
        for (let k = 0; k < dim; k++) batch[j * dim + k] = x[i * dim + k] + v[k];
      });
      const ans = await oracle.labels(batch, pending.length, {
        phase: "zs.init",
        sampleIds: Int32Array.from(pending, (i) => ids[i]),
      });
      const still: number[] = [];
      pending.forEach((i, j) => {
        if (ans.refused[j]) {
          refusedOut[i] = 1;
          return;
        }
        spent[i]++;
        if (ans.labels[j] !== y[i]) {
          cands[i].push({ theta: Float32Array.from(v, (a) => a / vn), lambda0: vn });
        } else if (spent[i] < o.queryLimit) still.push(i);
      });
      pending = still;
    }
    // Fallback: the direction to the nearest anchor of another class (its label is known: no query).
    // One anchor direction per sample is enough: later rounds would only repeat it.
    if (anchors) {
      for (const i of pending) {
        if (anchored[i]) continue;
        anchored[i] = 1;
        const near = nearestAnchors(anchors, x, i, y[i], dim, 1);
        if (near.length > 0) anchorStarts[i] = 1;
        cands[i].push(...near);
      }
    }
  }
  // Extra candidates for every sample: its nearest anchors of other classes.
  if (anchors && o.anchorDirections > 0) {
    for (let i = 0; i < n; i++) {
      if (refusedOut[i]) continue;
      const near = nearestAnchors(anchors, x, i, y[i], dim, o.anchorDirections);
      // Skip the one the fallback already added.
      for (const c of near) if (!cands[i].some((d) => d.lambda0 === c.lambda0)) cands[i].push(c);
    }
  }
  return cands;
}

/** Directions from sample i to its `k` nearest anchors of another class, with their λ0. */
function nearestAnchors(
  a: Anchors,
  x: Float32Array,
  i: number,
  c: number,
  dim: number,
  k: number,
): Candidate[] {
  const d2: { a: number; d: number }[] = [];
  for (let j = 0; j < a.labels.length; j++) {
    if (a.labels[j] === c || a.labels[j] < 0) continue;
    let d = 0;
    for (let q = 0; q < dim; q++) {
      const t = a.x[j * dim + q] - x[i * dim + q];
      d += t * t;
    }
    if (d > 0) d2.push({ a: j, d });
  }
  d2.sort((p, q) => p.d - q.d);
  return d2.slice(0, k).map(({ a: j, d }) => {
    const l0 = Math.sqrt(d);
    const theta = new Float32Array(dim);
    for (let q = 0; q < dim; q++) theta[q] = (a.x[j * dim + q] - x[i * dim + q]) / l0;
    return { theta, lambda0: l0 };
  });
}

/** Everything one sample's lockstep search needs. */
interface SampleInput {
  x: Float32Array;
  xo: number;
  dim: number;
  c: number;
  cands: Candidate[];
  spent: number;
  rng: Rng;
  o: typeof UNTARGETED_DEFAULTS;
}

/** What one sample's search returns. */
interface SampleOutput {
  g: number;
  theta: Float32Array;
  queries: number;
  initG: number;
  iterations: number;
  stop: UntargetedStop;
}

function rayAsk(p: SampleInput, theta: Float32Array, lam: number, phase: string) {
  return {
    phase,
    m: 1,
    write: (dst: Float32Array, off: number) => {
      for (let k = 0; k < p.dim; k++) dst[off + k] = p.x[p.xo + k] + lam * theta[k];
    },
  };
}

function unit(a: Float32Array): Float32Array {
  const s = norm(a, 0, a.length);
  for (let k = 0; k < a.length; k++) a[k] /= s;
  return a;
}

/** Stages 2 and 3 for one sample, as a lockstep search. */
function* sampleSearch(p: SampleInput): Search<SampleOutput> {
  const o = p.o;
  let q = p.spent;
  // Candidates nearest first; the nearest endpoint λ0 (labelled ≠ c) is already an upper bound.
  const cands = [...p.cands].sort((a, b) => a.lambda0 - b.lambda0);
  let g = cands.length > 0 ? cands[0].lambda0 : Infinity;
  let theta: Float32Array = cands.length > 0 ? cands[0].theta : new Float32Array(p.dim);
  const out = (stop: UntargetedStop, initG: number, it: number): SampleOutput => ({
    g,
    theta,
    queries: q,
    initG,
    iterations: it,
    stop,
  });
  const room = (m: number) => q + m <= o.queryLimit;

  // Stage 2: untargeted bisection of every candidate, pruned by the best so far.
  for (const cand of cands) {
    let hi = cand.lambda0;
    if (hi > g) {
      if (!room(1)) return out("limit", g, 0);
      const r = yield rayAsk(p, cand.theta, g, "zs.bisect");
      if (r === null) return out("budget", g, 0);
      q++;
      if (r[0] === p.c) continue;
      hi = g;
    }
    let lo = 0;
    let stopped: UntargetedStop | undefined;
    while (hi - lo >= o.tol) {
      if (!room(1)) {
        stopped = "limit";
        break;
      }
      const mid = (lo + hi) / 2;
      const r = yield rayAsk(p, cand.theta, mid, "zs.bisect");
      if (r === null) {
        stopped = "budget";
        break;
      }
      q++;
      if (r[0] !== p.c) hi = mid;
      else lo = mid;
    }
    if (hi <= g) [g, theta] = [hi, cand.theta];
    if (stopped) return out(stopped, g, 0);
  }
  const initG = g;
  if (!Number.isFinite(g)) return out("no-start", initG, 0);

  // Stage 3: Sign-OPT.
  const K = o.kGrad, dim = p.dim;
  let alpha = o.alpha, beta = o.beta;
  let it = 0;
  let stopped: UntargetedStop | undefined;

  // Local line search from g along θn; Infinity when θn cannot beat g (or the limit/budget stopped it).
  function* line(
    thetaN: Float32Array,
    tol: number,
  ): Generator<ReturnType<typeof rayAsk>, number, Int32Array | null> {
    if (!room(1)) {
      stopped = "limit";
      return Infinity;
    }
    const r = yield rayAsk(p, thetaN, g, "zs.line");
    if (r === null) {
      stopped = "budget";
      return Infinity;
    }
    q++;
    if (r[0] === p.c) return Infinity;
    let hi = g, lo = g * 0.99, cut = 0.01;
    for (let s = 0; s < o.maxShrink; s++) {
      if (!room(1)) {
        stopped = "limit";
        return hi;
      }
      const a = yield rayAsk(p, thetaN, lo, "zs.line");
      if (a === null) {
        stopped = "budget";
        return hi;
      }
      q++;
      if (a[0] === p.c) break;
      hi = lo;
      if (o.shrink === "doubling") cut = Math.min(0.5, 2 * cut);
      lo = hi * (1 - cut);
    }
    while (hi - lo > tol) {
      if (!room(1)) {
        stopped = "limit";
        return hi;
      }
      const mid = (lo + hi) / 2;
      const a = yield rayAsk(p, thetaN, mid, "zs.line");
      if (a === null) {
        stopped = "budget";
        return hi;
      }
      q++;
      if (a[0] !== p.c) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  const step = (G: Float32Array, a: number) => {
    const t = new Float32Array(dim);
    for (let k = 0; k < dim; k++) t[k] = theta[k] - a * G[k];
    return unit(t);
  };

  for (; it < o.maxIterations; it++) {
    if (!room(K)) return out("limit", initG, it);
    // Gradient sign estimate: K images x0 + g·normalize(Θ + u_k), ||u_k|| = β.
    const U = new Float32Array(K * dim);
    const gNow = g, thetaNow = theta, betaNow = beta;
    const r = yield {
      phase: "zs.grad",
      m: K,
      write: (dst: Float32Array, off: number) => {
        fillStandardNormal(p.rng, U);
        for (let k = 0; k < K; k++) {
          const uo = k * dim;
          const sc = betaNow / norm(U, uo, dim);
          let nn = 0;
          for (let j = 0; j < dim; j++) {
            U[uo + j] *= sc;
            const t = thetaNow[j] + U[uo + j];
            nn += t * t;
          }
          const f = gNow / Math.sqrt(nn);
          const d = off + k * dim;
          for (let j = 0; j < dim; j++) dst[d + j] = p.x[p.xo + j] + f * (thetaNow[j] + U[uo + j]);
        }
      },
    };
    if (r === null) return out("budget", initG, it);
    q += K;
    const G = new Float32Array(dim);
    for (let k = 0; k < K; k++) {
      const s = r[k] !== p.c ? -1 : 1;
      const uo = k * dim;
      for (let j = 0; j < dim; j++) G[j] += s * U[uo + j];
    }
    for (let j = 0; j < dim; j++) G[j] /= K;

    // Step size: double while improving, else quarter until improving.
    let bestTheta: Float32Array = theta, bestG = g;
    for (let tries = 0; tries < 15; tries++) {
      const tn = step(G, alpha);
      const gn = yield* line(tn, beta / 500);
      if (gn < bestG) {
        [bestTheta, bestG] = [tn, gn];
        alpha *= 2;
      } else break;
      if (stopped) break;
    }
    if (bestG >= g && !stopped) {
      for (let tries = 0; tries < 15; tries++) {
        alpha *= 0.25;
        const tn = step(G, alpha);
        const gn = yield* line(tn, beta / 500);
        if (gn < g) {
          [bestTheta, bestG] = [tn, gn];
          break;
        }
        if (stopped) break;
      }
    }
    [theta, g] = [bestTheta, bestG];
    if (stopped) return out(stopped, initG, it + 1);
    if (alpha < 1e-4) {
      alpha = 1;
      beta *= 0.1;
      if (beta < 1e-8) return out("converged", initG, it + 1);
    }
  }
  return out("iterations", initG, it);
}

/**
 * Untargeted minimal boundary distance and direction of every sample (see the module doc). `y` is
 * the class each sample must leave (its teacher label); `ids` key the ledger (default 0..n−1).
 */
export async function untargetedBoundary(
  oracle: LabelOracle,
  x: Float32Array,
  y: Int32Array,
  opts: UntargetedOptions & { ids?: Int32Array; anchors?: Anchors } = {},
): Promise<UntargetedResult> {
  checkUntargetedOptions(opts);
  const o = resolve(opts);
  const n = y.length;
  const dim = oracle.inputShape.reduce((a, b) => a * b, 1);
  checkLabels(y, oracle.numClasses, "untargetedBoundary labels");
  if (x.length !== n * dim || (opts.ids && opts.ids.length !== n)) {
    throw new InputError(
      `untargetedBoundary: ${x.length} pixel values and ${opts.ids?.length ?? n} ids for ${n} labels do ` +
        `not fit the teacher's input [${oracle.inputShape}]; ` +
        `pass n images of that shape, one label and id each`,
    );
  }
  const ids = opts.ids ?? Int32Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(o.seed);
  const spent = new Int32Array(n);
  const refused = new Uint8Array(n);
  const anchorStarts = new Uint8Array(n);
  const cands = await initialDirections(
    oracle,
    x,
    y,
    ids,
    dim,
    o,
    rng,
    opts.anchors,
    spent,
    refused,
    anchorStarts,
  );
  const initQueries = Int32Array.from(spent);
  const searches: Search<SampleOutput>[] = [];
  for (let i = 0; i < n; i++) {
    const sub = new Rng(((o.seed * 0x27d4eb2d) ^ (ids[i] * 0x165667b1) ^ 0x5bd1e995) >>> 0);
    searches.push(sampleSearch({
      x,
      xo: i * dim,
      dim,
      c: y[i],
      cands: cands[i],
      spent: spent[i],
      rng: sub,
      o,
    }));
  }
  const res = await runLockstep(oracle, searches, ids, opts.lockstep);
  const distances = new Float32Array(n);
  const directions = new Float32Array(n * dim);
  const queries = new Int32Array(n);
  const initDistances = new Float32Array(n);
  const iterations = new Int32Array(n);
  const stops: UntargetedStop[] = [];
  res.forEach((r, i) => {
    distances[i] = r.g;
    if (Number.isFinite(r.g)) directions.set(r.theta, i * dim);
    queries[i] = r.queries;
    initDistances[i] = r.initG;
    iterations[i] = r.iterations;
    stops.push(refused[i] && r.stop === "no-start" ? "budget" : r.stop);
  });
  return {
    distances,
    directions,
    queries,
    initQueries,
    initDistances,
    anchorStarts,
    iterations,
    stops,
    options: o,
  };
}
