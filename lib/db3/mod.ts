/**
 * `lib/db3`: DB3 soft labels from a label-only teacher (Wang 2021) — SD, BD and MBD distances, the
 * lockstep search driver that batches them, soft labels z from distances, and resumable labeling.
 *
 * @module
 */
export {
  candidatesFor,
  type ClassStreams,
  type Db3Samples,
  l2Between,
  makeClassStreams,
  sampleDim,
  sampleIds,
} from "./streams.ts";
export { sampleDistances, SD_DEFAULTS, type SdOptions, type SdResult } from "./sd.ts";
export {
  BD_DEFAULTS,
  type BdOptions,
  type BdPair,
  type BdResult,
  boundaryDistances,
  orderedCandidates,
  teacherLabelsOf,
} from "./bd.ts";
export {
  MBD_DEFAULTS,
  type MbdOptions,
  type MbdPair,
  type MbdResult,
  type MbdStop,
  minimalBoundaryDistances,
} from "./mbd.ts";
export { type Ask, type LockstepOptions, type Reply, runLockstep, type Search } from "./lockstep.ts";
export {
  distanceQuantile,
  type SoftLabelOptions,
  type SoftLabels,
  softLabelsFromDistances,
} from "./soft_labels.ts";
export { type Db3Distances, type Db3Method, labelDistances, type LabelRunOptions } from "./label_run.ts";
export { fillStandardNormal } from "./normal.ts";
