/**
 * Initial pseudo samples for ZSDB3KD: `perClass` noise images per class c with T(x) = c, found with
 * label queries only, every loop bounded, every query booked.
 *
 * 1. **Rejection sampling** (phase "zs.noise"): batches of `batch` draws from the `reference`
 *    distribution (the paper's), one label query each; a draw labelled c is kept while class c
 *    still needs samples. One draw serves every class at once, so these queries are shared.
 * 2. **Search over noise distributions** (phase "zs.noise"): once `referenceDraws` are spent, the
 *    other families (`smooth`, `strokes`) are drawn in turn — their hits fill quotas as well —
 *    until every class has at least one sample or `maxDraws` draws in all are spent.
 * 3. **Label-only walk** (phase "zs.walk"): a class c still short of `perClass` gets each missing
 *    sample from a rejected draw n (teacher class b ≠ c) and a class-c sample a found so far: on the
 *    segment x(t) = n + t·(a − n), T(x(0)) = b and T(x(1)) = c are known; bisection on t (to
 *    `walkTol`) keeps the smallest t labelled c, and the new sample is x(hi), a queried image of
 *    class c just across the boundary from the noise. At most `walkQueries` per class.
 * A class that none of this reaches is reported (`reached[c] = false`) and gets no samples.
 *
 * Noise queries are untagged (no pseudo sample exists yet: the ledger books them under sample −1,
 * where only the total budget applies); the report gives per class the shared draws spent until its
 * quota was met and the walk queries spent on it alone.
 */
import type { LabelOracle } from "../oracle/oracle.ts";
import { runLockstep, type Search } from "../db3/lockstep.ts";
import { checkNumbers, checkSeed, InputError } from "../util/checks.ts";
import { Rng } from "../util/rng.ts";
import { drawNoise, NOISE_FAMILIES, type NoiseFamily } from "./noise.ts";

/** Options of {@link initPseudoNoise}. */
export interface NoiseInitOptions {
  /** Samples per class. */
  perClass: number;
  /** Draws per label query batch. */
  batch?: number;
  /** Draws from the reference distribution before the other families are searched. */
  referenceDraws?: number;
  /** Bound on draws of all families together. */
  maxDraws?: number;
  /** Families searched after the reference draws (in turn). */
  families?: NoiseFamily[];
  /** Bisection tolerance on t ∈ [0, 1] in the walk. */
  walkTol?: number;
  /** Bound on walk queries per class. */
  walkQueries?: number;
  /** Passes of walks (a pass starts one walk per missing sample). */
  walkPasses?: number;
  /** Seed of the draws. */
  seed?: number;
}

/** Defaults: the reference distribution first, then a bounded search. */
export const NOISE_INIT_DEFAULTS = {
  batch: 2000,
  referenceDraws: 20000,
  maxDraws: 100000,
  families: NOISE_FAMILIES.filter((f) => f !== "reference") as NoiseFamily[],
  walkTol: 1 / 64,
  walkQueries: 100000,
  walkPasses: 4,
  seed: 0,
};

/** What the initialisation cost and found, per class. */
export interface NoiseInitReport {
  /** Draws (= label queries) of each family, shared by all classes. */
  draws: Record<NoiseFamily, number>;
  /** Teacher label histogram of all draws, per family (K counts each). */
  drawLabels: Record<NoiseFamily, number[]>;
  /** Per class: samples taken straight from draws, by family. */
  fromDraws: Record<NoiseFamily, number>[];
  /** Per class: samples made by the walk. */
  walked: number[];
  /** Per class: walk queries spent on it alone. */
  walkQueries: number[];
  /** Per class: shared draws spent when its quota was met from draws (null if it never was). */
  drawsWhenFilled: (number | null)[];
  /** Per class: shared draws spent when its first sample appeared (null if never). */
  drawsToFirst: (number | null)[];
  /** Per class: reached at all. */
  reached: boolean[];
  /** Total label queries of the initialisation. */
  queries: number;
}

/** The initial samples: `x` (n×dim), their class `y`, the family each came from, and the report. */
export interface NoiseInit {
  x: Float32Array;
  y: Int32Array;
  /** "reference" | "smooth" | "strokes" | "walk" per sample. */
  origin: string[];
  report: NoiseInitReport;
}

/** One walk from noise `s` (another class) towards `a` (class c); the image x(hi), or null. */
function* walk(
  s: Float32Array,
  a: Float32Array,
  c: number,
  tol: number,
  report: NoiseInitReport,
): Search<Float32Array | null> {
  let lo = 0, hi = 1;
  while (hi - lo > tol) {
    const mid = (lo + hi) / 2;
    const r = yield {
      phase: "zs.walk",
      m: 1,
      write: (dst: Float32Array, off: number) => {
        for (let k = 0; k < s.length; k++) dst[off + k] = s[k] + mid * (a[k] - s[k]);
      },
    };
    if (r === null) return null;
    report.walkQueries[c]++;
    report.queries++;
    if (r[0] === c) hi = mid;
    else lo = mid;
  }
  // hi = 1: no crossing found below the anchor itself, nothing new.
  return hi < 1 ? Float32Array.from(s, (v, k) => v + hi * (a[k] - v)) : null;
}

/** Check noise-initialisation options up front (an `InputError` names the option and its range). */
export function checkNoiseInitOptions(opts: Partial<NoiseInitOptions>, where = "initPseudoNoise"): void {
  checkNumbers(where, opts, {
    perClass: { integer: true, min: 1 },
    batch: { integer: true, min: 1 },
    referenceDraws: { integer: true, min: 0 },
    maxDraws: { integer: true, min: 0 },
    walkTol: { min: 1e-12, max: 1 },
    walkQueries: { integer: true, min: 0 },
    walkPasses: { integer: true, min: 0 },
  });
  if (opts.seed !== undefined) checkSeed(opts.seed, where);
  if (opts.families !== undefined) {
    const bad = opts.families.filter((f) => !NOISE_FAMILIES.includes(f));
    if (bad.length > 0 || opts.families.length === 0) {
      throw new InputError(
        `${where}: families [${opts.families}] must be a non-empty list of ${NOISE_FAMILIES.join(", ")}`,
      );
    }
  }
}

/**
 * `perClass` images per class, each labelled its class by the teacher (see the module doc). Samples
 * are ordered by class.
 */
export async function initPseudoNoise(oracle: LabelOracle, opts: NoiseInitOptions): Promise<NoiseInit> {
  checkNoiseInitOptions(opts);
  const o = { ...NOISE_INIT_DEFAULTS, ...opts };
  const K = oracle.numClasses, shape = oracle.inputShape;
  const dim = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(o.seed);
  const kept: Float32Array[][] = Array.from({ length: K }, () => []);
  const origin: string[][] = Array.from({ length: K }, () => []);
  // Rejected draws (walk starts), a bounded reservoir per teacher class.
  const rejected: Float32Array[][] = Array.from({ length: K }, () => []);
  const rejectCap = Math.max(8, o.perClass);
  const report: NoiseInitReport = {
    draws: { reference: 0, smooth: 0, strokes: 0 },
    drawLabels: {
      reference: new Array(K).fill(0),
      smooth: new Array(K).fill(0),
      strokes: new Array(K).fill(0),
    },
    fromDraws: Array.from({ length: K }, () => ({ reference: 0, smooth: 0, strokes: 0 })),
    walked: new Array(K).fill(0),
    walkQueries: new Array(K).fill(0),
    drawsWhenFilled: new Array(K).fill(null),
    drawsToFirst: new Array(K).fill(null),
    reached: new Array(K).fill(false),
    queries: 0,
  };
  let total = 0;
  const allFull = () => kept.every((k) => k.length >= o.perClass);
  const allReached = () => kept.every((k) => k.length > 0);
  let turn = 0;
  while (total < o.maxDraws && !allFull()) {
    const family: NoiseFamily = total < o.referenceDraws
      ? "reference"
      : o.families[turn++ % o.families.length];
    if (family !== "reference" && allReached()) break;
    const m = Math.min(o.batch, o.maxDraws - total);
    const x = drawNoise(family, rng, m, shape);
    const ans = await oracle.labels(x, m, { phase: "zs.noise" });
    total += m;
    report.draws[family] += m;
    report.queries += m;
    for (let i = 0; i < m; i++) {
      if (ans.refused[i]) continue;
      const c = ans.labels[i];
      report.drawLabels[family][c]++;
      const img = x.slice(i * dim, (i + 1) * dim);
      if (kept[c].length < o.perClass) {
        kept[c].push(img);
        origin[c].push(family);
        report.fromDraws[c][family]++;
        if (kept[c].length === 1) report.drawsToFirst[c] = total;
        if (kept[c].length === o.perClass) report.drawsWhenFilled[c] = total;
      } else if (rejected[c].length < rejectCap) rejected[c].push(img);
      else rejected[c][rng.int(rejectCap)] = img;
    }
    if (ans.refused.some((r) => r === 1)) break;
  }
  // Walk: fill each short class from rejected draws of other classes towards its own samples, all
  // walks of a pass in lockstep (one oracle call per round).
  for (let pass = 0; pass < o.walkPasses; pass++) {
    const searches: Search<Float32Array | null>[] = [];
    const classOf: number[] = [];
    for (let c = 0; c < K; c++) {
      const anchors = kept[c].length;
      const need = o.perClass - anchors;
      if (anchors === 0 || need <= 0) continue;
      const starts: Float32Array[] = [];
      for (let b = 0; b < K; b++) if (b !== c) starts.push(...rejected[b], ...kept[b]);
      if (starts.length === 0) continue;
      const perWalk = Math.ceil(Math.log2(1 / o.walkTol));
      const affordable = Math.floor((o.walkQueries - report.walkQueries[c]) / perWalk);
      for (let j = 0; j < Math.min(need, affordable); j++) {
        searches.push(walk(starts[rng.int(starts.length)], kept[c][rng.int(anchors)], c, o.walkTol, report));
        classOf.push(c);
      }
    }
    if (searches.length === 0) break;
    const found = await runLockstep(oracle, searches, new Int32Array(searches.length).fill(-1));
    found.forEach((img, j) => {
      const c = classOf[j];
      if (img && kept[c].length < o.perClass) {
        kept[c].push(img);
        origin[c].push("walk");
        report.walked[c]++;
      }
    });
  }
  const n = kept.reduce((s, k) => s + k.length, 0);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  const orig: string[] = [];
  let j = 0;
  for (let c = 0; c < K; c++) {
    report.reached[c] = kept[c].length > 0;
    kept[c].forEach((img, i) => {
      x.set(img, j * dim);
      y[j++] = c;
      orig.push(origin[c][i]);
    });
  }
  return { x, y, origin: orig, report };
}
