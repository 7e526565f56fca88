/** Plain data types shared by every module of `lib/data`. */

/** Datasets {@link loadDataset} can read. */
export type DatasetName = "mnist" | "fmnist" | "cifar10";

/** The two official splits. */
export type Split = "train" | "test";

/** Where a loaded dataset came from and how it was checked. */
export interface DataSource {
  /** Folder the files were read from. */
  dir: string;
  /** Files read, in order. */
  files: string[];
  /** `"verified"`: every file matched a known SHA-256; `"skipped"`: no known sums (or `verify: false`). */
  checksum: "verified" | "skipped";
  /** Records available in the files before `limit` was applied. */
  available: number;
}

/**
 * A labelled dataset: images (NHWC float32 in [0,1], shape `[n,h,w,c]`) or points (shape `[n,d]`),
 * with Int32 labels in `[0, numClasses)`.
 */
export interface LabeledData {
  /** Dataset name, e.g. `"mnist"` or `"two-moons"`. */
  name: string;
  /** `"train"`, `"test"`, or a free-form tag for generated or derived data. */
  split: Split | string;
  /** Inputs, row-major in `shape`. */
  x: Float32Array;
  /** Labels, one per row. */
  y: Int32Array;
  /** `[n,h,w,c]` for images, `[n,d]` for points. */
  shape: number[];
  /** Number of classes. */
  numClasses: number;
  /** Class names in label order. */
  classNames: string[];
  /** Provenance, set by {@link loadDataset}. */
  source?: DataSource;
}
