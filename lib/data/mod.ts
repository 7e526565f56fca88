/**
 * `lib/data`: datasets as {@link LabeledData} (NHWC float32 in [0,1], Int32 labels), toy 2-D data,
 * subsets, and the file-format readers underneath. See DESIGN.md, "lib/data".
 */
export type { DatasetName, DataSource, LabeledData, Split } from "./types.ts";
export {
  CIFAR10_CLASSES,
  DATASET_NAMES,
  FMNIST_CLASSES,
  loadDataset,
  type LoadDatasetOptions,
  MNIST_CLASSES,
} from "./datasets.ts";
export {
  clearDatasetReadLog,
  type DatasetReadEntry,
  type DatasetReadListener,
  datasetReadLog,
  onDatasetRead,
} from "./read_log.ts";
export { DatasetError, type DatasetErrorKind, type DatasetErrorOptions } from "./errors.ts";
export {
  blobs,
  type BlobsOptions,
  type Grid2d,
  grid2d,
  type Grid2dOptions,
  twoMoons,
  type TwoMoonsOptions,
} from "./toys.ts";
export { classCounts, rowSize, stratifiedIndices, stratifiedSubset, subset } from "./subsets.ts";
export { toTensors } from "./tensors.ts";
export {
  gunzipIfNeeded,
  type IdxArray,
  type IdxType,
  type IdxValues,
  isGzip,
  parseIdx,
  type ParseIdxOptions,
} from "./idx.ts";
export {
  CIFAR_META_FILE,
  CIFAR_RECORD_BYTES,
  CIFAR_SIDE,
  CIFAR_TEST_FILE,
  CIFAR_TRAIN_FILES,
  type CifarBatch,
  type CifarBatchOptions,
  cifarRecordCount,
  decodeCifarBatch,
  decodeCifarInto,
  parseCifarMeta,
} from "./cifar.ts";
export {
  KNOWN_IDX_SHA256,
  parseSha256Sums,
  sha256Hex,
  type VerifyOptions,
  verifySha256,
} from "./checksums.ts";
export { bytesToUnit, byteToUnit } from "./pixels.ts";
export {
  CACHE_DIR_ENV,
  cacheDir,
  DATASET_DIR_ENV,
  datasetDir,
  defaultDatasetDirs,
  repoRoot,
} from "./dataset_dirs.ts";
