/**
 * Numbers over seeds: one summary (mean, sample standard deviation, min–max, count) and one way to
 * print it. A single seed has no spread, so it is printed without "±" and says "1 seed"; two or more
 * seeds print mean ± spread, name the spread (std or min–max) and the seed count.
 *
 * @module
 */

/** Mean and spread of one quantity over seeds. */
export interface SeedSummary {
  /** Mean over the seeds (NaN when there are none). */
  mean: number;
  /** Sample standard deviation (n − 1); `undefined` with fewer than 2 seeds. */
  std?: number;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** Number of seeds (finite values). */
  n: number;
}

/** Which spread {@link formatSeeds} prints. */
export type SpreadKind = "std" | "range";

/** Summarise the finite values of one quantity over seeds. */
export function summarizeSeeds(values: readonly number[]): SeedSummary {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, min: NaN, max: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : undefined;
  return { mean, std, min: Math.min(...v), max: Math.max(...v), n };
}

/** Options of {@link formatSeeds}. */
export interface FormatSeedsOptions {
  /** Decimals (default 2). */
  digits?: number;
  /** Spread to print for ≥ 2 seeds (default `"std"`). */
  spread?: SpreadKind;
  /** Unit appended to the numbers, e.g. `"%"` (default none). */
  unit?: string;
  /** Leave out the seed count (for tables with a seeds column; default false). */
  bare?: boolean;
}

/**
 * Print a number over seeds: `"93.45 (1 seed)"`, `"97.31 ± 0.40 std (3 seeds)"` or
 * `"97.31 (96.90–97.70 over 3 seeds)"`. Never prints a spread for one seed. Accepts a summary, the
 * raw values, or `{mean, std?, n?}` (a missing `n` counts as one seed unless `std` is given).
 */
export function formatSeeds(
  s: SeedSummary | readonly number[] | { mean: number; std?: number; n?: number },
  opts: FormatSeedsOptions = {},
): string {
  const sum: { mean: number; std?: number; min?: number; max?: number; n: number } = Array.isArray(s)
    ? summarizeSeeds(s as readonly number[])
    : (() => {
      const o = s as { mean: number; std?: number; n?: number; min?: number; max?: number };
      return { ...o, n: o.n ?? (o.std !== undefined && o.std > 0 ? 2 : 1) };
    })();
  if (!Number.isFinite(sum.mean) || sum.n === 0) return "";
  const d = opts.digits ?? 2;
  const u = opts.unit ?? "";
  const mean = `${sum.mean.toFixed(d)}${u}`;
  if (sum.n < 2) return opts.bare ? mean : `${mean} (1 seed)`;
  const seeds = `${sum.n} seeds`;
  if (opts.spread === "range" && sum.min !== undefined && sum.max !== undefined) {
    return `${mean} (${sum.min.toFixed(d)}–${sum.max.toFixed(d)}${u}${opts.bare ? "" : ` over ${seeds}`})`;
  }
  if (sum.std === undefined || !Number.isFinite(sum.std)) return opts.bare ? mean : `${mean} (${seeds})`;
  return `${mean} ± ${sum.std.toFixed(d)}${u} std${opts.bare ? "" : ` (${seeds})`}`;
}
