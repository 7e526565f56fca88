/**
 * What a query must satisfy before any teacher sees it or any ledger is charged: a whole number of
 * images, exactly n × (the teacher's input size) floats, one sample id per image, and finite pixels
 * only.
 *
 * The rule for non-finite pixels (NaN, ±Infinity) is **reject**: a label of an image that is not a
 * number means nothing, and clamping would answer it as some other image (a NaN became 1.0 in the
 * local oracle and 0 in the remote one). The request is refused as a whole with a
 * {@link QueryInputError} that names the first offending sample and pixel; nothing is booked.
 * Finite values outside [0, 1] stay legal (the label oracles clamp them, as documented).
 *
 * Every oracle calls {@link checkQueryImages} on entry; the label server calls
 * {@link findNonFinitePixel} on a decoded request to answer 400 with the same wording.
 *
 * @module
 */

/** A query the oracle refuses before asking the teacher (nothing is booked). */
export class QueryInputError extends Error {
  /** Index (in the request) of the offending image, when one image is to blame. */
  readonly sample: number | undefined;

  constructor(message: string, sample?: number) {
    super(message);
    this.name = "QueryInputError";
    this.sample = sample;
  }
}

/** Exponent bits of a float32; all ones means NaN or ±Infinity. */
const EXP = 0x7f800000;

/**
 * The first non-finite value among the first `n` images of `dim` floats each: its image index and
 * the pixel offset inside that image, or `null` when all values are finite. One integer pass over
 * the float bits (no per-value branch on the common path).
 */
export function findNonFinitePixel(
  x: Float32Array,
  n: number,
  dim: number,
): { sample: number; pixel: number; value: number } | null {
  const len = n * dim;
  const bits = new Int32Array(x.buffer, x.byteOffset, Math.min(len, x.length));
  let any = 0;
  for (let i = 0; i < bits.length; i++) any |= ((bits[i] & EXP) === EXP) as unknown as number;
  if (!any) return null;
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & EXP) === EXP) {
      return { sample: Math.floor(i / dim), pixel: i % dim, value: x[i] };
    }
  }
  return null;
}

/** The message of a request refused for a non-finite pixel (shared by the oracles and the server). */
export function nonFiniteMessage(hit: { sample: number; pixel: number; value: number }): string {
  return `image ${hit.sample} of the request has a non-finite pixel (${hit.value} at offset ${hit.pixel}); ` +
    `queries must be finite numbers (images in [0, 1]). Nothing was sent or booked: ` +
    `find where the NaN/Infinity comes from (e.g. a diverged search or a division by zero) and fix it ` +
    `there, or drop that image.`;
}

/**
 * Check a query of `n` images of `dim` floats (flat NHWC) before it is charged: `n` a non-negative
 * integer, `x` exactly `n·dim` floats, `sampleIds` (if given) one per image, every value finite. Throws
 * {@link QueryInputError}; `where` prefixes the message (e.g. "label oracle, phase bd.search").
 */
export function checkQueryImages(
  x: Float32Array,
  n: number,
  dim: number,
  sampleIds?: Int32Array,
  where = "oracle",
): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new QueryInputError(
      `${where}: image count ${n} is not a non-negative integer; pass n = x.length / ${dim}`,
    );
  }
  if (!(x instanceof Float32Array)) {
    throw new QueryInputError(`${where}: images must be a Float32Array (flat NHWC), got ${typeof x}`);
  }
  if (x.length !== n * dim) {
    throw new QueryInputError(
      `${where}: ${x.length} floats are not ${n} images of ${dim} values (the teacher's input size); ` +
        `pass exactly n images of the teacher's input shape (a subarray if the buffer is longer)`,
    );
  }
  if (sampleIds && sampleIds.length !== n) {
    throw new QueryInputError(
      `${where}: ${sampleIds.length} sample ids for ${n} images; pass exactly one id per image`,
    );
  }
  const hit = findNonFinitePixel(x, n, dim);
  if (hit) throw new QueryInputError(`${where}: ${nonFiniteMessage(hit)}`, hit.sample);
}
