/**
 * Verdict sentences computed from measured numbers, so that no notebook states a conclusion its
 * data do not back. Every function takes plain numbers (accuracies in percent, one value per seed)
 * and returns the judgement as data plus one sentence for a markdown cell.
 *
 * A gap between two numbers counts as an effect only when it exceeds both a minimum size
 * (`minEffect`, default 1 point) and k = 2 units of the noise: the standard error of the difference
 * over seeds when both sides have ≥ 2 seeds, otherwise a given per-number noise (e.g. the test-set
 * standard error √(p(1−p)/N) of one evaluation). With one seed and no given noise the gap is judged
 * on `minEffect` alone and the sentence says so.
 *
 * @module
 */
import { formatSeeds, type SeedSummary, summarizeSeeds } from "./seeds.ts";

/** One measured quantity: a name and its value per seed (percent). */
export interface Sample {
  /** Name as shown, e.g. `"SD"`, `"no TV prior"`. */
  name: string;
  /** Value per seed, in percent. */
  values: readonly number[];
  /**
   * The seed of each value. When both sides of a comparison give seeds and share at least two, the
   * gap is tested on the per-seed differences (a paired comparison: a seed that is hard for both
   * sides does not count as noise).
   */
  seeds?: readonly number[];
}

/** How a gap is tested against noise. */
export interface NoiseOptions {
  /** Smallest gap, in points, that counts as an effect at all (default 1). */
  minEffect?: number;
  /**
   * Noise of one number in points when there are no seeds to measure it (e.g. the test-set
   * standard error). The difference of two such numbers has noise √2 × this.
   */
  se?: number;
  /** How many noise units a gap must exceed (default 2). */
  k?: number;
}

/** The judgement on a − b. */
export interface Gap {
  /** Mean of a minus mean of b, in points. */
  gap: number;
  /** The gap must exceed this (points) to count. */
  threshold: number;
  /** Where the threshold came from. */
  noise: "paired seeds" | "seeds" | "given" | "minimum only";
  /** |gap| > threshold. */
  measurable: boolean;
  /** Summaries of both sides. */
  a: SeedSummary;
  /** Summaries of both sides. */
  b: SeedSummary;
  /** E.g. `"the noise (2 × seed standard error of the gap = 1.3 points)"`. */
  noiseWords: string;
}

const fmt = (v: number, d = 2) => v.toFixed(d);

/** Compare sample a with sample b: the gap of the means and whether it exceeds the noise. */
export function compareGap(a: Sample, b: Sample, opts: NoiseOptions = {}): Gap {
  const sa = summarizeSeeds(a.values), sb = summarizeSeeds(b.values);
  const minEffect = opts.minEffect ?? 1;
  const k = opts.k ?? 2;
  const gap = sa.mean - sb.mean;
  let noise: Gap["noise"] = "minimum only";
  let unit = 0;
  const diffs = pairedDiffs(a, b);
  if (diffs.length >= 2) {
    noise = "paired seeds";
    const d = summarizeSeeds(diffs);
    unit = (d.std ?? 0) / Math.sqrt(d.n);
  } else if (sa.n >= 2 && sb.n >= 2) {
    noise = "seeds";
    unit = Math.sqrt((sa.std ?? 0) ** 2 / sa.n + (sb.std ?? 0) ** 2 / sb.n);
  } else if (opts.se !== undefined && Number.isFinite(opts.se)) {
    noise = "given";
    unit = Math.SQRT2 * opts.se;
  }
  const threshold = Math.max(minEffect, k * unit);
  const noiseWords = noise === "paired seeds"
    ? `the noise (${k} × the standard error of the per-seed gap over ${diffs.length} shared seeds = ${
      fmt(k * unit)
    } points; minimum ${fmt(minEffect, 1)})`
    : noise === "seeds"
    ? `the noise (${k} × the seed standard error of the gap = ${fmt(k * unit)} points; minimum ${
      fmt(minEffect, 1)
    })`
    : noise === "given"
    ? `the noise (${k} × the standard error of the gap = ${fmt(k * unit)} points; minimum ${
      fmt(minEffect, 1)
    })`
    : `the ${fmt(minEffect, 1)}-point minimum (one seed: the seed-to-seed noise was not measured)`;
  return { gap, threshold, noise, measurable: Math.abs(gap) > threshold, a: sa, b: sb, noiseWords };
}

/** a − b for every seed both samples have (empty when either gives no seeds). */
function pairedDiffs(a: Sample, b: Sample): number[] {
  if (!a.seeds || !b.seeds) return [];
  const bySeed = new Map<number, number>();
  b.seeds.forEach((s, i) => bySeed.set(s, b.values[i]));
  const out: number[] = [];
  a.seeds.forEach((s, i) => {
    const v = bySeed.get(s);
    if (v !== undefined && Number.isFinite(v) && Number.isFinite(a.values[i])) out.push(a.values[i] - v);
  });
  return out;
}

/** Result of {@link compareMethods}. */
export interface MethodComparison {
  /** Samples sorted best first. */
  ranking: { name: string; summary: SeedSummary }[];
  /** Best minus worst. */
  spread: Gap;
  /** True when no pair of methods differs measurably. */
  allSame: boolean;
  /** The sentence for the notebook. */
  sentence: string;
}

/**
 * Which of several methods trains the best student, by how much it beats the worst, and whether
 * that gap exceeds the noise ("no measurable difference" otherwise).
 */
export function compareMethods(samples: readonly Sample[], opts: NoiseOptions & { what?: string } = {}) {
  const ranked = samples
    .map((s) => ({ name: s.name, values: s.values, summary: summarizeSeeds(s.values) }))
    .filter((s) => s.summary.n > 0)
    .sort((x, y) => y.summary.mean - x.summary.mean);
  if (ranked.length < 2) {
    throw new Error(
      `compareMethods: need at least two methods with a finite value, got ${ranked.length}; ` +
        `pass every method's per-seed accuracies`,
    );
  }
  const best = ranked[0], worst = ranked[ranked.length - 1];
  const spread = compareGap(best, worst, opts);
  const what = opts.what ?? "student";
  const all = ranked.map((r) => `${r.name} ${formatSeeds(r.summary, { unit: " %" })}`).join(", ");
  let sentence: string;
  if (!spread.measurable) {
    sentence = `All ${ranked.length} methods train the same ${what} within ${spread.noiseWords}: ` +
      `best − worst = ${fmt(spread.gap)} points (${all}); no measurable difference.`;
  } else {
    const second = ranked[1];
    const lead = compareGap(best, second, opts);
    const head = lead.measurable
      ? `${best.name} trains the best ${what}, ${fmt(lead.gap)} points above the next (${second.name})`
      : `${best.name} and ${second.name} train the best ${what}s (${
        fmt(lead.gap)
      } points apart, within the noise)`;
    sentence =
      `${head}; best − worst (${worst.name}) = ${fmt(spread.gap)} points, more than ${spread.noiseWords}. ` +
      `The methods do not train the same ${what} (${all}).`;
  }
  return {
    ranking: ranked.map((r) => ({ name: r.name, summary: r.summary })),
    spread,
    allSame: !spread.measurable,
    sentence,
  } satisfies MethodComparison;
}

/** What a paper says removing or changing a component does to the student. */
export type PaperDirection = "worse" | "better" | "same";

/** One ablation variant, with the paper's expected direction when the paper states one. */
export interface AblationVariant extends Sample {
  /** The paper's direction relative to the full method, if known. */
  paper?: PaperDirection;
}

/** The verdict on one ablation variant. */
export interface AblationVerdict {
  /** Variant name. */
  name: string;
  /** Variant − full, points. */
  gap: number;
  /** Measured direction relative to the full method. */
  verdict: "no measurable effect" | "better than full" | "worse than full";
  /** Agreement with the paper's direction (`"unknown"` when the paper gives none). */
  paper: "agrees" | "contradicts the paper" | "not reproduced" | "unknown";
  /** The sentence. */
  sentence: string;
}

/**
 * Judge each ablation variant against the full method: "no measurable effect", "better than full"
 * or "worse than full", and — where the paper's direction is known — whether the measurement
 * agrees, contradicts the paper (opposite direction) or does not reproduce it (no measurable effect).
 */
export function ablationVerdicts(
  full: Sample,
  variants: readonly AblationVariant[],
  opts: NoiseOptions = {},
): AblationVerdict[] {
  return variants.map((v) => {
    const g = compareGap(v, full, opts);
    const verdict = !g.measurable
      ? "no measurable effect"
      : g.gap > 0
      ? "better than full"
      : "worse than full";
    const measured: PaperDirection = !g.measurable ? "same" : g.gap > 0 ? "better" : "worse";
    const paper = v.paper === undefined
      ? "unknown"
      : v.paper === measured
      ? "agrees"
      : measured === "same"
      ? "not reproduced"
      : "contradicts the paper";
    const paperWords = paper === "unknown"
      ? ""
      : paper === "agrees"
      ? ` This agrees with the paper (${v.paper} than full).`
      : paper === "not reproduced"
      ? ` The paper reports it ${v.paper} than full; this run does not reproduce that.`
      : ` This contradicts the paper, which reports it ${v.paper} than full.`;
    const signed = Number(fmt(Math.abs(g.gap))) === 0
      ? `±${fmt(0)}`
      : `${g.gap > 0 ? "+" : "−"}${fmt(Math.abs(g.gap))}`;
    const sentence = `${v.name}: ${verdict} (${signed} points vs full, ` +
      `${formatSeeds(g.a, { unit: " %" })} vs ${formatSeeds(g.b, { unit: " %" })}; threshold ${
        fmt(g.threshold)
      } from ${g.noiseWords}).${paperWords}`;
    return { name: v.name, gap: g.gap, verdict, paper, sentence };
  });
}

/** One point of a curve. */
export interface CurvePoint {
  /** Position, e.g. iteration or queries. */
  x: number;
  /** Value, e.g. accuracy (%) or a distance. */
  y: number;
}

/** Options of {@link curveVerdict}. */
export interface CurveOptions {
  /** Name of the quantity, e.g. `"accuracy"` (default `"the value"`). */
  what?: string;
  /** Name of the x axis, e.g. `"iteration"` (default `"x"`). */
  xName?: string;
  /** Smallest change that counts: points for absolute curves, percent of the first value for relative. */
  minEffect?: number;
  /** Judge changes relative to the first value (distances) instead of in absolute points (accuracy). */
  relative?: boolean;
  /** Unit for absolute changes (default `" points"`). */
  unit?: string;
}

/** The verdict on a curve. */
export interface CurveVerdict {
  /** Overall direction from first to last point. */
  trend: "flat" | "rising" | "falling";
  /** Last − first (points, or percent of the first value when relative). */
  change: number;
  /** Steps where the value goes against the overall direction by more than `minEffect`. */
  reversals: { from: number; to: number; change: number }[];
  /** Steps against the overall direction by at most `minEffect` (within the noise), still named. */
  minorReversals: { from: number; to: number; change: number }[];
  /** The sentence. */
  sentence: string;
}

/**
 * Describe a curve: flat, rising or falling from the first to the last point, and every step that
 * goes against that direction (a dip in a rising curve, a bump in a falling or flat one) named by
 * its x values.
 */
export function curveVerdict(points: readonly CurvePoint[], opts: CurveOptions = {}): CurveVerdict {
  const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).slice().sort((a, b) =>
    a.x - b.x
  );
  if (pts.length < 2) {
    throw new Error(`curveVerdict: need at least two finite points, got ${pts.length}`);
  }
  const what = opts.what ?? "the value";
  const xName = opts.xName ?? "x";
  const rel = opts.relative === true;
  const minEffect = opts.minEffect ?? (rel ? 5 : 1);
  const base = pts[0].y;
  const delta = (a: number, b: number) => (rel ? (100 * (b - a)) / Math.abs(base || 1) : b - a);
  const unit = rel ? " %" : opts.unit ?? " points";
  const first = pts[0], last = pts[pts.length - 1];
  const change = delta(first.y, last.y);
  const trend = Math.abs(change) <= minEffect ? "flat" : change > 0 ? "rising" : "falling";
  const reversals: CurveVerdict["reversals"] = [];
  const minorReversals: CurveVerdict["minorReversals"] = [];
  for (let i = 1; i < pts.length; i++) {
    const c = delta(pts[i - 1].y, pts[i].y);
    const step = { from: pts[i - 1].x, to: pts[i].x, change: c };
    const against = trend === "rising" ? c < 0 : trend === "falling" ? c > 0 : c !== 0;
    if (against && Math.abs(c) > minEffect) reversals.push(step);
    else if (against && trend !== "flat") minorReversals.push(step);
  }
  const sign = (v: number) => {
    const t = fmt(Math.abs(v), rel ? 0 : 2);
    return Number(t) === 0 ? `±${t}` : (v > 0 ? "+" : "−") + t;
  };
  const within = `±${fmt(minEffect, rel ? 0 : 1)}${unit}`;
  const span = `from ${xName} ${first.x} to ${last.x}`;
  const head = trend === "flat"
    ? `${what} is flat ${span} (${sign(change)}${unit}, within ${within})`
    : `${what} ${trend === "rising" ? "rises" : "falls"} ${span} (${sign(change)}${unit})`;
  const list = (rs: CurveVerdict["reversals"]) =>
    rs.map((r) => `${xName} ${r.from} → ${r.to}: ${sign(r.change)}${unit}`).join("; ");
  const tail = reversals.length === 0
    ? trend === "flat" ? "" : `, monotone within ${within} per step`
    : trend === "flat"
    ? `; it moves by more than that between steps (${list(reversals)})`
    : `, not monotone: ${list(reversals)}`;
  const minor = minorReversals.length
    ? `; step(s) against the trend within ${within}: ${list(minorReversals)}`
    : "";
  return { trend, change, reversals, minorReversals, sentence: `${capitalize(head)}${tail}${minor}.` };
}

/**
 * Two curves over the same x (e.g. student accuracy and boundary distance against queries): one
 * sentence per curve, and a remark when one moves and the other is flat.
 */
export function pairedCurves(
  a: { points: readonly CurvePoint[]; opts: CurveOptions },
  b: { points: readonly CurvePoint[]; opts: CurveOptions },
): { a: CurveVerdict; b: CurveVerdict; sentence: string } {
  const va = curveVerdict(a.points, a.opts), vb = curveVerdict(b.points, b.opts);
  const wa = a.opts.what ?? "the first curve", wb = b.opts.what ?? "the second curve";
  let remark = "";
  if (va.trend === "flat" && vb.trend !== "flat") {
    remark =
      ` So ${wb} changes while ${wa} does not: at this scale the change in ${wb} does not carry over to ${wa}.`;
  } else if (vb.trend === "flat" && va.trend !== "flat") {
    remark = ` So ${wa} changes while ${wb} does not.`;
  }
  return { a: va, b: vb, sentence: `${va.sentence} ${vb.sentence}${remark}` };
}

function capitalize(s: string): string {
  return s.length ? s[0].toUpperCase() + s.slice(1) : s;
}
