/**
 * What the units of a zsdb3kd plan are expected to cost (`LevelPlan.estimate`, shown by `bkd plan`),
 * from rates measured on the kit's 2-core reference machine.
 *
 * @module
 */
import type { UnitEstimate } from "../runner/plan.ts";
import { zsTeacherFamily } from "./zs_settings.ts";
import type { ZsSpec } from "./zs_spec.ts";

/**
 * Measured rates on the 2-core reference machine, native LeNet-5 engine, from the laptop run of
 * notebook 30 (results/notebooks/30_zsdb3kd_mnist.laptop.ipynb: 500 pseudo samples × 10 iterations,
 * 4.86 M generation queries in 110 s wall on both cores; labeling 500 samples, ≈ 400 k queries in 8 s;
 * students 5,400 images/s). AlexNet queries are ≈ 20× dearer (the smoke settings' note).
 */
export const ZS_RATES = {
  /** Generation queries per (sample, iteration) relative to the per-search query limit. */
  queriesPerLimit: 0.97,
  cpuSecondsPerQuery: 220 / 4.86e6,
  labelQueriesPerSample: 800,
  labelCpuSecondsPerQuery: 16 / 4e5,
  studentCpuSecondsPerImage: 2 / 5400,
  alexnetFactor: 20,
  source: "results/notebooks/30_zsdb3kd_mnist.laptop.ipynb (laptop run, native engine, 2 cores)",
};

/** Estimated cost of one unit of each level (upper bounds: every search runs to its query limit). */
export function zsEstimates(spec: ZsSpec): Record<"init" | "generate" | "label" | "student", UnitEstimate> {
  const s = spec.settings, g = s.generate;
  const f = zsTeacherFamily(spec.dataset) === "alexnet" ? ZS_RATES.alexnetFactor : 1;
  const n = Math.min(s.shardSize, g.rounds * spec.numClasses * g.perClass);
  const genQ = n * g.iterations * g.untargeted.queryLimit * ZS_RATES.queriesPerLimit;
  const initQ = g.noise.maxDraws + spec.numClasses * Math.min(g.noise.walkQueries, 200);
  const pool = Math.min(s.label.bd.candidates, g.perClass * g.rounds);
  const labelQ = n * ZS_RATES.labelQueriesPerSample * (pool / 50);
  const students = g.perClass * g.rounds * spec.numClasses * s.student.epochs;
  // A sweep cell relabels up to its largest subset (the main students ask nothing).
  const sweepQ = spec.sweep.counts.length === 0
    ? 0
    : Math.max(...spec.sweep.counts) * spec.numClasses * ZS_RATES.labelQueriesPerSample * (pool / 50);
  const src = ZS_RATES.source;
  return {
    init: { queries: initQ, cpuSeconds: initQ * ZS_RATES.cpuSecondsPerQuery * f, source: src },
    generate: { queries: genQ, cpuSeconds: genQ * ZS_RATES.cpuSecondsPerQuery * f, source: src },
    label: { queries: labelQ, cpuSeconds: labelQ * ZS_RATES.labelCpuSecondsPerQuery * f, source: src },
    student: {
      queries: sweepQ,
      cpuSeconds:
        (students * ZS_RATES.studentCpuSecondsPerImage + sweepQ * ZS_RATES.labelCpuSecondsPerQuery) * f,
      source: src,
    },
  };
}
