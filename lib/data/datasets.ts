/**
 * `loadDataset`: MNIST, Fashion-MNIST and CIFAR-10 as {@link LabeledData} (NHWC float32 in [0,1],
 * Int32 labels), read from the offline sources, verified against known SHA-256 sums, and logged in
 * the read log (`datasetReadLog`) before any file is touched.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { KNOWN_IDX_SHA256, parseSha256Sums, verifySha256 } from "./checksums.ts";
import {
  CIFAR_META_FILE,
  CIFAR_SIDE,
  CIFAR_TEST_FILE,
  CIFAR_TRAIN_FILES,
  cifarRecordCount,
  decodeCifarInto,
  parseCifarMeta,
} from "./cifar.ts";
import { cacheDir, corruptFix, datasetDir, missingFix } from "./dataset_dirs.ts";
import { readDecompressed, readSource } from "./decompressed_cache.ts";
import { DatasetError } from "./errors.ts";
import { type IdxArray, parseIdx } from "./idx.ts";
import { bytesToUnit } from "./pixels.ts";
import { recordDatasetRead } from "./read_log.ts";
import type { DatasetName, LabeledData, Split } from "./types.ts";

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions {
  /** Keep only the first `limit` records (in file order; CIFAR training batches 1…5 in turn). */
  limit?: number;
  /** Folder to read instead of the environment override / default. */
  dir?: string;
  /**
   * Check files against known SHA-256 sums (default true). MNIST/FMNIST use the built-in sums of the
   * official files; CIFAR-10 uses `SHA256SUMS` in the folder when present (the shared subset has one)
   * and otherwise checks structure only (`source.checksum === "skipped"`).
   */
  verify?: boolean;
  /** Cache decompressed `.gz` files under `data/cache/` (default true). */
  cache?: boolean;
}

/** All dataset names {@link loadDataset} accepts. */
export const DATASET_NAMES: readonly DatasetName[] = ["mnist", "fmnist", "cifar10"];

/** Class names of MNIST (digits). */
export const MNIST_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/** Class names of Fashion-MNIST, in label order. */
export const FMNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Class names of CIFAR-10, used when a folder lacks `batches.meta.txt`. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/**
 * Load a split of a dataset. Every call is recorded in the read log first (see `datasetReadLog`).
 * Problems with files throw a {@link DatasetError} naming the file and the fix.
 */
export async function loadDataset(
  name: DatasetName,
  split: Split,
  opts: LoadDatasetOptions = {},
): Promise<LabeledData> {
  recordDatasetRead({
    name,
    split,
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
  });
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new DatasetError(`unknown dataset "${name}"`, {
      kind: "argument",
      fix: `use one of ${DATASET_NAMES.join(", ")}`,
    });
  }
  if (split !== "train" && split !== "test") {
    throw new DatasetError(`unknown split "${split}"`, { kind: "argument", fix: `use "train" or "test"` });
  }
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 0)) {
    throw new RangeError(`limit must be a non-negative integer, got ${opts.limit}`);
  }
  const dir = await datasetDir(name, opts.dir);
  return name === "cifar10" ? await loadCifar(dir, split, opts) : await loadIdxPair(name, dir, split, opts);
}

// ---------------------------------------------------------------------------------------------------
// MNIST / Fashion-MNIST

async function loadIdxPair(
  name: "mnist" | "fmnist",
  dir: string,
  split: Split,
  opts: LoadDatasetOptions,
): Promise<LabeledData> {
  const prefix = split === "train" ? "train" : "t10k";
  const verify = opts.verify ?? true;
  // Read both files concurrently but report problems in a fixed order (images first).
  const settled = await Promise.allSettled([
    readIdx(name, dir, `${prefix}-images-idx3-ubyte`, 3, opts),
    readIdx(name, dir, `${prefix}-labels-idx1-ubyte`, 1, opts),
  ]);
  for (const r of settled) if (r.status === "rejected") throw r.reason;
  const [images, labels] = settled.map((r) => (r as PromiseFulfilledResult<IdxFile>).value);
  const fix = corruptFix(name);
  const [n, h, w] = images.idx.dims;
  if (images.idx.type !== "uint8" || labels.idx.type !== "uint8") {
    throw new DatasetError("expected unsigned-byte idx data", { kind: "magic", file: images.path, fix });
  }
  if (labels.idx.dims[0] !== n) {
    throw new DatasetError(`label file has ${labels.idx.dims[0]} labels but the image file has ${n} images`, {
      kind: "size",
      file: labels.path,
      fix,
    });
  }
  const take = Math.min(n, opts.limit ?? n);
  const y = new Int32Array(take);
  const lab = labels.idx.data;
  for (let i = 0; i < take; i++) {
    if (lab[i] > 9) {
      throw new DatasetError(`label ${lab[i]} at index ${i} is not a class 0–9`, {
        kind: "format",
        file: labels.path,
        fix,
      });
    }
    y[i] = lab[i];
  }
  const x = bytesToUnit((images.idx.data as Uint8Array).subarray(0, take * h * w));
  return {
    name,
    split,
    x,
    y,
    shape: [take, h, w, 1],
    numClasses: 10,
    classNames: [...(name === "mnist" ? MNIST_CLASSES : FMNIST_CLASSES)],
    source: {
      dir,
      files: [images.path, labels.path],
      checksum: verify ? "verified" : "skipped",
      available: n,
    },
  };
}

interface IdxFile {
  path: string;
  idx: IdxArray;
}

async function readIdx(
  name: "mnist" | "fmnist",
  dir: string,
  base: string,
  rank: number,
  opts: LoadDatasetOptions,
): Promise<IdxFile> {
  const path = await findIdxFile(name, dir, base);
  const fix = corruptFix(name);
  const file = await readDecompressed(path, {
    cacheDir: opts.cache === false ? null : cacheDir(),
    fix,
  });
  if (opts.verify ?? true) {
    verifySha256(file.bytes, {
      file: path,
      expected: KNOWN_IDX_SHA256[name][base],
      actual: file.sha256,
      fix,
    });
  }
  return { path, idx: parseIdx(file.bytes, { file: path, rank, fix }) };
}

async function findIdxFile(name: DatasetName, dir: string, base: string): Promise<string> {
  for (const candidate of [join(dir, base), join(dir, `${base}.gz`)]) {
    if (await isFile(candidate)) return candidate;
  }
  throw new DatasetError(`${name} file not found (looked for ${base} and ${base}.gz)`, {
    kind: "missing",
    file: join(dir, `${base}[.gz]`),
    fix: missingFix(name),
  });
}

// ---------------------------------------------------------------------------------------------------
// CIFAR-10

async function loadCifar(dir: string, split: Split, opts: LoadDatasetOptions): Promise<LabeledData> {
  if (!(await isDirectory(dir))) {
    throw new DatasetError("CIFAR-10 folder not found", {
      kind: "missing",
      file: dir,
      fix: missingFix("cifar10"),
    });
  }
  const fix = corruptFix("cifar10");
  const names = split === "train" ? CIFAR_TRAIN_FILES : [CIFAR_TEST_FILE];
  const paths = names.map((f) => join(dir, f));
  const counts: number[] = [];
  for (const p of paths) {
    const size = await fileSize(p);
    if (size === undefined) {
      throw new DatasetError("CIFAR-10 batch file not found", {
        kind: "missing",
        file: p,
        fix: missingFix("cifar10"),
      });
    }
    counts.push(cifarRecordCount(size, { file: p, fix }));
  }
  const available = counts.reduce((a, b) => a + b, 0);
  const take = Math.min(available, opts.limit ?? available);
  const sums = (opts.verify ?? true) ? await readCifarSums(dir) : undefined;
  const classNames = await readCifarClassNames(dir);

  const perImage = CIFAR_SIDE * CIFAR_SIDE * 3;
  const x = new Float32Array(take * perImage);
  const y = new Int32Array(take);
  const files: string[] = [];
  let at = 0;
  for (let k = 0; k < paths.length && at < take; k++) {
    const bytes = await readSource(paths[k], missingFix("cifar10"));
    // Re-check: the file may have changed since stat.
    const count = cifarRecordCount(bytes.length, { file: paths[k], fix });
    if (sums) {
      const expected = sums.get(names[k]);
      if (expected === undefined) {
        throw new DatasetError(`file is not listed in ${join(dir, "SHA256SUMS")}`, {
          kind: "checksum",
          file: paths[k],
          fix: "add its sum to SHA256SUMS or restore the original folder",
        });
      }
      verifySha256(bytes, { file: paths[k], expected, fix });
    }
    const n = Math.min(count, take - at);
    decodeCifarInto(bytes, n, x, y, at, { file: paths[k], fix });
    files.push(paths[k]);
    at += n;
  }
  return {
    name: "cifar10",
    split,
    x,
    y,
    shape: [take, CIFAR_SIDE, CIFAR_SIDE, 3],
    numClasses: 10,
    classNames,
    source: { dir, files, checksum: sums ? "verified" : "skipped", available },
  };
}

async function readCifarSums(dir: string): Promise<Map<string, string> | undefined> {
  const path = join(dir, "SHA256SUMS");
  if (!(await isFile(path))) return undefined;
  return parseSha256Sums(await readFile(path, "utf8"), path);
}

async function readCifarClassNames(dir: string): Promise<string[]> {
  const path = join(dir, CIFAR_META_FILE);
  if (!(await isFile(path))) return [...CIFAR10_CLASSES];
  return parseCifarMeta(await readFile(path, "utf8"), path);
}

// ---------------------------------------------------------------------------------------------------
// file-system helpers

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await fileSize(path)) !== undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
