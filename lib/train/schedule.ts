/**
 * Learning-rate schedules, evaluated per batch from (epoch, batch) so that a resumed run gets
 * exactly the rates it would have had.
 *
 * - `constant`: η every step.
 * - `step`: η·γ^(number of milestones ≤ epoch), epochs counted from 0 (PyTorch `MultiStepLR`
 *   stepped once per epoch).
 * - `onecycle`: PyTorch `OneCycleLR` stepped per batch, with its defaults: warm-up over the first
 *   `pctStart` = 0.3 of all steps from η/25 to η, then cosine annealing down to η/25/1e4; momentum
 *   (SGD μ or Adam β1) cycles inversely between 0.95 and 0.85 unless `cycleMomentum: false`.
 *
 * @module
 */

/** Schedule choice in a TrainConfig. */
export type ScheduleSpec =
  | { kind: "constant" }
  | { kind: "step"; milestones: number[]; gamma: number }
  | {
    kind: "onecycle";
    /** Fraction of steps spent warming up (default 0.3). */
    pctStart?: number;
    /** Initial rate is η / divFactor (default 25). */
    divFactor?: number;
    /** Final rate is η / divFactor / finalDivFactor (default 1e4). */
    finalDivFactor?: number;
    /** Cycle momentum (default true, as PyTorch). */
    cycleMomentum?: boolean;
    /** Momentum at the peak learning rate (default 0.85). */
    baseMomentum?: number;
    /** Momentum at the start and end (default 0.95). */
    maxMomentum?: number;
  };

/** Rate (and momentum, when the schedule sets one) for a step. */
export interface ScheduledParams {
  lr: number;
  momentum?: number;
}

/** Cosine interpolation from `start` (pct 0) to `end` (pct 1), as PyTorch's `_annealing_cos`. */
export function cosineAnneal(start: number, end: number, pct: number): number {
  return end + (start - end) / 2 * (Math.cos(Math.PI * pct) + 1);
}

/**
 * Hyperparameters for batch `batch` (0-based) of epoch `epoch` (0-based).
 *
 * @param baseLr η from the optimizer config (the peak rate for one-cycle)
 * @param stepsPerEpoch batches per epoch (one-cycle's total is epochs × stepsPerEpoch)
 */
export function scheduledParams(
  spec: ScheduleSpec | undefined,
  baseLr: number,
  epoch: number,
  batch: number,
  stepsPerEpoch: number,
  epochs: number,
): ScheduledParams {
  const s = spec ?? { kind: "constant" };
  switch (s.kind) {
    case "constant":
      return { lr: baseLr };
    case "step": {
      const passed = s.milestones.filter((m) => m <= epoch).length;
      return { lr: baseLr * Math.pow(s.gamma, passed) };
    }
    case "onecycle": {
      const total = epochs * stepsPerEpoch;
      const step = Math.min(epoch * stepsPerEpoch + batch, total - 1);
      return oneCycleAt(s, baseLr, step, total);
    }
  }
}

/** PyTorch `OneCycleLR` (two phases, cosine) at 0-based step `step` of `total`. */
export function oneCycleAt(
  s: Extract<ScheduleSpec, { kind: "onecycle" }>,
  maxLr: number,
  step: number,
  total: number,
): ScheduledParams {
  const pct = s.pctStart ?? 0.3;
  const initialLr = maxLr / (s.divFactor ?? 25);
  const minLr = initialLr / (s.finalDivFactor ?? 1e4);
  const mBase = s.baseMomentum ?? 0.85, mMax = s.maxMomentum ?? 0.95;
  const phases = [
    { end: pct * total - 1, lr: [initialLr, maxLr], m: [mMax, mBase] },
    { end: total - 1, lr: [maxLr, minLr], m: [mBase, mMax] },
  ];
  let start = 0;
  for (let i = 0; i < phases.length; i++) {
    const ph = phases[i];
    if (step <= ph.end || i === phases.length - 1) {
      const p = ph.end === start ? 0 : (step - start) / (ph.end - start);
      const out: ScheduledParams = { lr: cosineAnneal(ph.lr[0], ph.lr[1], p) };
      if (s.cycleMomentum ?? true) out.momentum = cosineAnneal(ph.m[0], ph.m[1], p);
      return out;
    }
    start = ph.end;
  }
  throw new Error("unreachable");
}
