/**
 * What a plan is expected to cost, from its levels' per-unit estimates: units, teacher queries,
 * core-hours, and the wall time on a given number of cores when every level runs as waves of
 * parallel units (a level starts when the one before it is done, as the executors run them).
 *
 * @module
 */
import type { RunPlan } from "./plan.ts";

/** A plan's totals. */
export interface PlanCost {
  units: number;
  /** Teacher queries over the estimated levels. */
  queries: number;
  /** CPU-seconds over the estimated levels. */
  cpuSeconds: number;
  /** Levels without an estimate (their cost is not in the totals). */
  unestimated: string[];
}

/** Totals of `plan` (see the module doc). */
export function planCost(plan: RunPlan): PlanCost {
  const out: PlanCost = { units: 0, queries: 0, cpuSeconds: 0, unestimated: [] };
  for (const l of plan.levels) {
    out.units += l.keys.length;
    if (!l.estimate) {
      out.unestimated.push(l.name);
      continue;
    }
    out.queries += l.keys.length * l.estimate.queries;
    out.cpuSeconds += l.keys.length * l.estimate.cpuSeconds;
  }
  return out;
}

/**
 * Wall-clock seconds of `plan` on `cores` cores: per level, units run in waves of
 * ⌊cores / cores-per-unit⌋ (at least one), each unit taking its CPU-seconds over its cores; levels
 * run one after the other. Levels without an estimate count as zero.
 */
export function planWallSeconds(plan: RunPlan, cores: number): number {
  if (!Number.isInteger(cores) || cores < 1) {
    throw new RangeError(`cores must be a positive integer, got ${cores}`);
  }
  let total = 0;
  for (const l of plan.levels) {
    if (!l.estimate || l.keys.length === 0) continue;
    const perUnit = Math.min(l.resources.cores, cores);
    const parallel = Math.max(1, Math.floor(cores / perUnit));
    const waves = Math.ceil(l.keys.length / parallel);
    total += waves * (l.estimate.cpuSeconds / perUnit);
  }
  return total;
}
