/**
 * Step-size schedule over synthesis batches.
 *
 * CAKE keeps the SGD step size η fixed within a batch of samples and lowers it from batch to batch:
 * early batches travel far from their noise initialisation, late ones barely move, which scatters the
 * transfer set "at different scales" around the decision boundaries.
 *
 * @module
 */

/** How η_m changes over the M batches. */
export type DecayKind = "linear" | "cosine" | "none";

/** Options of the step-size schedule. */
export interface StepSizeSchedule {
  /** η0: step size of the first batch. */
  eta0: number;
  /** D: decades of decay over the M batches (η goes from η0 towards η0·10^−D). Paper: 4. */
  decades: number;
  /**
   * `"linear"`: log10 η_m falls linearly, η_m = 10^(log10 η0 − D·m/M) (paper default);
   * `"cosine"`: log10 η_m follows a half cosine from log10 η0 to log10 η0 − D;
   * `"none"`: η_m = η0 for every batch (the "decay off" ablation).
   */
  kind: DecayKind;
}

/**
 * η_m, the step size of batch m (0-based) out of M.
 *
 * - linear: η_m = 10^(log10 η0 − D·m/M)
 * - cosine: η_m = 10^(log10 η0 − D + ½·D·(1 + cos(π·m/M)))
 * - none:   η_m = η0
 */
export function stepSize(m: number, numBatches: number, s: StepSizeSchedule): number {
  if (!(s.eta0 > 0)) throw new Error(`stepSize: η0 must be > 0, got ${s.eta0}`);
  if (s.kind === "none" || numBatches <= 0) return s.eta0;
  const start = Math.log10(s.eta0);
  const t = m / numBatches;
  const mag = s.kind === "linear"
    ? start - s.decades * t
    : start - s.decades + 0.5 * s.decades * (1 + Math.cos(Math.PI * t));
  return Math.pow(10, mag);
}

/** All M step sizes η_0 … η_{M−1}. */
export function stepSizes(numBatches: number, s: StepSizeSchedule): Float64Array {
  const out = new Float64Array(numBatches);
  for (let m = 0; m < numBatches; m++) out[m] = stepSize(m, numBatches, s);
  return out;
}
