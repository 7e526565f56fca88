/**
 * Table B's ordering claims checked on a DB3 table run, each gap beside its noise — the standard
 * error of the per-seed gap when both rows have ≥ 2 shared student seeds, else the test set's
 * binomial standard error of one evaluation — and a plain-language verdict built from the numbers.
 *
 * @module
 */
import type { Db3TableMethod, Db3TableResult } from "../experiments/db3.ts";
import { compareMethods, type Sample } from "../results/verdict.ts";
import { DB3_METHOD_TITLES } from "./db3_table.ts";

const pct = (v: number) => 100 * v;

/** One ordering claim of table B checked on the run. */
export interface Db3Claim {
  claim: string;
  holds: boolean;
  /** a − b in points (final-epoch accuracies). */
  gap: number;
  /** The gap in units of its standard error (see `noise`). */
  gapInSE: number;
  /**
   * What the standard error is: "the per-seed gap over N seeds" (paired student seeds) or, when
   * absent, the binomial standard error of a difference of two test accuracies.
   */
  noise?: string;
  /** The same claim on best-epoch accuracies (the reference's test-set selection). */
  holdsAtBestEpoch: boolean | null;
}

/** Check "BD > CE", "MBD > CE", "MBD ≥ BD", "BD ≥ SD" on a run. */
export function db3Claims(r: Db3TableResult): Db3Claim[] {
  const testN = r.testN;
  const get = (m: Db3TableMethod) => r.rows.find((x) => x.method === m);
  const pairs: [Db3TableMethod, Db3TableMethod, boolean][] = [
    ["bd", "ce", true],
    ["mbd", "ce", true],
    ["mbd", "bd", false],
    ["bd", "sd", false],
  ];
  const out: Db3Claim[] = [];
  for (const [a, b, strict] of pairs) {
    const ra = get(a), rb = get(b);
    if (!ra || !rb) continue;
    const gap = ra.testAcc - rb.testAcc;
    const diffs = pairedSeedGaps(ra, rb);
    let se: number, noise: string | undefined;
    if (diffs.length >= 2) {
      const m = diffs.reduce((x, y) => x + y, 0) / diffs.length;
      const sd = Math.sqrt(diffs.reduce((x, y) => x + (y - m) ** 2, 0) / (diffs.length - 1));
      se = sd / Math.sqrt(diffs.length);
      noise = `the per-seed gap over ${diffs.length} seeds`;
    } else {
      const pm = (ra.testAcc + rb.testAcc) / 2;
      se = Math.sqrt((2 * pm * (1 - pm)) / Math.max(1, testN));
    }
    const ok = (x: number, y: number) => (strict ? x > y : x >= y);
    out.push({
      claim: `${DB3_METHOD_TITLES[a]} ${strict ? ">" : "≥"} ${DB3_METHOD_TITLES[b]}`,
      holds: ok(ra.testAcc, rb.testAcc),
      gap: pct(gap),
      gapInSE: se > 0 ? gap / se : 0,
      ...(noise ? { noise } : {}),
      holdsAtBestEpoch: ra.bestTestAcc != null && rb.bestTestAcc != null
        ? ok(ra.bestTestAcc, rb.bestTestAcc)
        : null,
    });
  }
  return out;
}

/** a − b per student seed both rows have (fractions). */
function pairedSeedGaps(a: Db3TableResult["rows"][number], b: Db3TableResult["rows"][number]): number[] {
  if (!a.seeds || !b.seeds || !a.testAccBySeed || !b.testAccBySeed) return [];
  const bySeed = new Map(b.seeds.map((s, i) => [s, b.testAccBySeed![i]]));
  return a.seeds.flatMap((s, i) => bySeed.has(s) ? [a.testAccBySeed![i] - bySeed.get(s)!] : []);
}

/** The soft-label rows (SD, BD, MBD) as per-seed samples in percent, for {@link db3ClaimsText}. */
export function db3SeedSamples(r: Db3TableResult): Sample[] {
  return r.rows.filter((x) => x.method === "sd" || x.method === "bd" || x.method === "mbd").map((x) => ({
    name: DB3_METHOD_TITLES[x.method],
    values: (x.testAccBySeed ?? [x.testAcc]).map(pct),
    ...(x.seeds ? { seeds: x.seeds } : {}),
  }));
}

/**
 * A plain-language verdict on the claims, built from the numbers (for a markdown cell). The
 * comparison of the soft-label students comes from `compareMethods` (lib/results/verdict.ts): over
 * their seeds when `samples` ({@link db3SeedSamples}) are given, else on the diagnostics' final
 * accuracies against the test-set standard error of one evaluation (`testN` test images; derived from
 * the claims' gaps when not given).
 */
export function db3ClaimsText(
  claims: Db3Claim[],
  diag: Record<string, string | number>[],
  opts: { testN?: number; samples?: Sample[] } = {},
): string {
  const failed = claims.filter((c) => !c.holds);
  const lines = claims.map((c) =>
    `- ${c.claim}: **${c.holds ? "holds" : "does not hold"}** (gap ${c.gap.toFixed(2)} points = ` +
    `${c.gapInSE.toFixed(1)} standard errors of ${c.noise ?? "the test-set estimate"}${
      c.holdsAtBestEpoch === null
        ? ""
        : `; at the best epoch it ${c.holdsAtBestEpoch ? "holds" : "does not hold"}`
    })`
  );
  if (failed.length === 0) return lines.join("\n");
  const small = failed.filter((c) => Math.abs(c.gapInSE) < 2);
  const why: string[] = [];
  for (const seeded of [false, true]) {
    const group = small.filter((c) => (c.noise !== undefined) === seeded);
    if (!group.length) continue;
    why.push(
      `${group.map((c) => c.claim).join(", ")}: the gap is within 2 standard errors of ` +
        (seeded
          ? `${group[0].noise}, i.e. not distinguishable from seed-to-seed noise.`
          : `the test-set estimate, i.e. not distinguishable from evaluation noise with one seed.`),
    );
  }
  const soft = opts.samples ?? diag
    .filter((d) => Number.isFinite(Number(d["final acc (%)"])))
    .map((d) => ({ name: String(d.method), values: [Number(d["final acc (%)"])] }));
  const se = testSetSE(soft.flatMap((x) => x.values), claims.filter((c) => !c.noise), opts.testN);
  const cmp = soft.length >= 2 ? compareMethods(soft, { se }) : undefined;
  if (cmp) why.push(`Soft-label students: ${cmp.sentence}`);
  const flat = diag.filter((d) => Number(d["mean entropy / log K"]) > 0.95);
  if (flat.length) {
    const entropies = flat.map((d) =>
      `${d.method}: entropy ${(Number(d["mean entropy / log K"])).toFixed(3)} of the maximum`
    ).join(", ");
    why.push(
      `At this τ the targets are nearly uniform (${entropies}), so the KD term adds little beyond the CE term` +
        (cmp === undefined
          ? "."
          : cmp.allSame
          ? "; consistent with the soft-label students not differing measurably."
          : "; yet the soft-label students differ measurably, so near-uniform targets do not explain the gaps."),
    );
  }
  const blown = diag.filter((d) => Number(d["flagged share of KD pull"]) > 0.2);
  if (blown.length) {
    why.push(
      `The 1/d blow-up: flagged samples carry ${
        blown.map((d) => `${(100 * Number(d["flagged share of KD pull"])).toFixed(0)}% (${d.method})`).join(
          ", ",
        )
      } of the KD term's pull (see the flagged samples and notebook 13's remedies).`,
    );
  }
  return [...lines, "", "Why not, from this run's data:", ...why.map((w) => `- ${w}`)].join("\n");
}

/**
 * Standard error, in points, of one test accuracy: √(p(1−p)/N) at the mean accuracy when `testN` is
 * known, otherwise read off the claims (gap / gapInSE is the error of a difference, √2 × this).
 */
function testSetSE(accs: number[], claims: Db3Claim[], testN?: number): number | undefined {
  if (testN !== undefined && testN > 0 && accs.length) {
    const p = accs.reduce((a, b) => a + b, 0) / accs.length / 100;
    return 100 * Math.sqrt((p * (1 - p)) / testN);
  }
  const c = claims.find((x) => Number.isFinite(x.gapInSE) && Math.abs(x.gapInSE) > 1e-9);
  return c ? Math.abs(c.gap / c.gapInSE) / Math.SQRT2 : undefined;
}
