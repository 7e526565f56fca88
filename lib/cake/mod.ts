/**
 * `lib/cake`: CAKE (Braun, Mundt & Kersting 2024) — contrastive, boundary-scattered synthesis of a
 * transfer set through a `logits+grad` teacher — and the two baselines of its Figure 1 (naive CE-only
 * synthesis, a conditional generator). See DESIGN.md and ../shared/spec/algorithms.md, "CAKE".
 *
 * @module
 */
export {
  type CakeWeights,
  hasSpatialAxes,
  logitsObjective,
  lossCls,
  lossContr,
  lossEnt,
  lossTv,
  lossTvGrad,
} from "./losses.ts";
export { type DecayKind, stepSize, stepSizes, type StepSizeSchedule } from "./schedule.ts";
export {
  CAKE_NORMALIZATION,
  type CakeDataset,
  cakeDefaults,
  type CakeOptions,
  type CakeOptionsInput,
  type Normalization,
  resolveCakeOptions,
} from "./options.ts";
export {
  type BatchListener,
  type CakeStats,
  type CakeTransferSet,
  drawTargetClasses,
  etaOf,
  synthesize,
  synthesizeBatch,
} from "./synthesize.ts";
export {
  type BatchCache,
  type BatchRecord,
  CakeCacheFileError,
  CakeCacheMismatchError,
  openBatchCache,
} from "./checkpoint.ts";
export { NAIVE_OVERRIDES, naiveOptions, synthesizeNaive } from "./naive.ts";
export {
  type ConditionalGenerator,
  GENERATOR_DEFAULTS,
  type GeneratorOptions,
  type GeneratorSet,
  synthesizeWithGenerator,
} from "./generator.ts";
export { agreement, argmaxRows, type SynthesisMethod, type SyntheticSet } from "./types.ts";
