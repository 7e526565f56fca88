/**
 * Experiment scales. `smoke` proves the pipeline in seconds (tests, CI); `laptop` is the default,
 * real datasets with reduced counts chosen so results are meaningful on a 2-core CPU (≤ ~30 min per
 * notebook); `paper` is the published settings, unchanged (GPU or a cluster).
 */
export type Scale = "smoke" | "laptop" | "paper";

/** All scales, smallest first. */
export const SCALES: readonly Scale[] = ["smoke", "laptop", "paper"];

/** Validate a user-supplied scale string (e.g. from a notebook parameter or the environment). */
export function parseScale(s: string | undefined, fallback: Scale = "laptop"): Scale {
  if (s === undefined || s === "") return fallback;
  if ((SCALES as readonly string[]).includes(s)) return s as Scale;
  throw new Error(`scale "${s}" is not one of ${SCALES.join(", ")}`);
}

/** Pick the value for a scale from a per-scale table. */
export function atScale<T>(scale: Scale, table: Record<Scale, T>): T {
  return table[scale];
}
