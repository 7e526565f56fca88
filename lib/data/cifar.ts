/**
 * Reader for the CIFAR-10 binary format (`cifar-10-batches-bin`, Krizhevsky 2009): each record is
 * 3,073 bytes, one label byte (0–9) then 1,024 red, 1,024 green and 1,024 blue bytes of a 32×32 image,
 * row-major. The same code reads the shared 1,017-record subset and the full official folder.
 */
import { DatasetError } from "./errors.ts";
import { byteToUnit } from "./pixels.ts";

/** Bytes per CIFAR-10 binary record. */
export const CIFAR_RECORD_BYTES = 3073;
/** Image side length. */
export const CIFAR_SIDE = 32;
/** Pixels per channel plane. */
const PLANE = CIFAR_SIDE * CIFAR_SIDE;

/** Training batch file names, in order. */
export const CIFAR_TRAIN_FILES: readonly string[] = [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`);
/** Test batch file name. */
export const CIFAR_TEST_FILE = "test_batch.bin";
/** Class-name file of the official folder. */
export const CIFAR_META_FILE = "batches.meta.txt";

/** Options of {@link cifarRecordCount} and {@link decodeCifarBatch}. */
export interface CifarBatchOptions {
  /** File named in errors. */
  file?: string;
  /** Fix text appended to error messages. */
  fix?: string;
  /** Number of classes labels must be below (10 for CIFAR-10). */
  numClasses?: number;
}

/**
 * Number of records in a batch file of `byteLength` bytes. Throws a {@link DatasetError} of kind
 * `"size"` naming the file when the length is zero or not a multiple of 3,073.
 */
export function cifarRecordCount(byteLength: number, opts: CifarBatchOptions = {}): number {
  if (byteLength === 0 || byteLength % CIFAR_RECORD_BYTES !== 0) {
    throw new DatasetError(
      `CIFAR batch size ${byteLength} bytes is not a positive multiple of the ${CIFAR_RECORD_BYTES}-byte record`,
      {
        kind: "size",
        file: opts.file ?? "<buffer>",
        fix: opts.fix ??
          "the file is truncated or not a CIFAR-10 binary batch; replace it with an intact copy",
      },
    );
  }
  return byteLength / CIFAR_RECORD_BYTES;
}

/**
 * Decode the first `count` records of a batch into `x` (NHWC float32 in [0,1], 32×32×3 per image) and
 * `y` (Int32 labels), starting at record `at` of the outputs. Labels ≥ `numClasses` throw a
 * {@link DatasetError} naming the file.
 */
export function decodeCifarInto(
  bytes: Uint8Array,
  count: number,
  x: Float32Array,
  y: Int32Array,
  at: number,
  opts: CifarBatchOptions = {},
): void {
  const numClasses = opts.numClasses ?? 10;
  const scale = byteToUnit();
  const perImage = PLANE * 3;
  for (let r = 0; r < count; r++) {
    const src = r * CIFAR_RECORD_BYTES;
    const label = bytes[src];
    if (label >= numClasses) {
      throw new DatasetError(`label ${label} of record ${r} is not below ${numClasses}`, {
        kind: "format",
        file: opts.file ?? "<buffer>",
        fix: opts.fix ?? "the file is not a CIFAR-10 binary batch; replace it with an intact copy",
      });
    }
    y[at + r] = label;
    const dst = (at + r) * perImage;
    const px = src + 1;
    for (let p = 0; p < PLANE; p++) {
      const o = dst + 3 * p;
      x[o] = scale[bytes[px + p]];
      x[o + 1] = scale[bytes[px + PLANE + p]];
      x[o + 2] = scale[bytes[px + 2 * PLANE + p]];
    }
  }
}

/** A decoded batch. */
export interface CifarBatch {
  /** NHWC float32 in [0,1], shape `[n, 32, 32, 3]`. */
  x: Float32Array;
  /** Labels. */
  y: Int32Array;
  /** Number of records decoded. */
  n: number;
}

/** Decode a whole batch buffer (or its first `limit` records). */
export function decodeCifarBatch(
  bytes: Uint8Array,
  opts: CifarBatchOptions & { limit?: number } = {},
): CifarBatch {
  const total = cifarRecordCount(bytes.length, opts);
  const n = Math.min(total, opts.limit ?? total);
  const x = new Float32Array(n * PLANE * 3);
  const y = new Int32Array(n);
  decodeCifarInto(bytes, n, x, y, 0, opts);
  return { x, y, n };
}

/**
 * Class names from the text of `batches.meta.txt` (one per line, blank lines ignored). Throws a
 * {@link DatasetError} naming `file` unless exactly `numClasses` names are found.
 */
export function parseCifarMeta(text: string, file = CIFAR_META_FILE, numClasses = 10): string[] {
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== "");
  if (names.length !== numClasses) {
    throw new DatasetError(`expected ${numClasses} class names, found ${names.length}`, {
      kind: "format",
      file,
      fix: "restore the official batches.meta.txt (one class name per line)",
    });
  }
  return names;
}
