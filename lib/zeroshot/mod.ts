/**
 * `lib/zeroshot`: ZSDB3KD (Wang 2021) from a label-only teacher and no data — untargeted minimal
 * boundary distances, noise initialisation that reaches every class, pseudo-sample generation with
 * checkpoints, and the soft-label + student steps the reference left unwritten.
 *
 * @module
 */
export {
  type Anchors,
  UNTARGETED_DEFAULTS,
  untargetedBoundary,
  type UntargetedOptions,
  type UntargetedResult,
  type UntargetedStop,
} from "./untargeted.ts";
export { drawNoise, NOISE_FAMILIES, type NoiseFamily } from "./noise.ts";
export {
  initPseudoNoise,
  NOISE_INIT_DEFAULTS,
  type NoiseInit,
  type NoiseInitOptions,
  type NoiseInitReport,
} from "./noise_init.ts";
export {
  GENERATE_DEFAULTS,
  type GenerateOptions,
  generatePseudoSamples,
  type IterationStats,
  type PseudoSet,
  snapshotX,
} from "./generate.ts";
export {
  labelPseudoSamples,
  type PseudoBatch,
  type PseudoLabelOptions,
  type PseudoLabels,
  type StudentOptions,
  type StudentResult,
  trainZeroShotStudent,
} from "./pipeline.ts";
