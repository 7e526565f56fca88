/**
 * SD — sample distance (DB3, Wang 2021). For each class t ≠ c: d_t = min over the first `candidates`
 * images x_i of the sample's class-t stream of ||x_i − x0||. No teacher queries: it only uses the
 * ground-truth labels of other training images.
 */
import { checkNumbers } from "../util/checks.ts";
import { checkStreams } from "./bd.ts";
import {
  candidatesFor,
  checkDb3Samples,
  type ClassStreams,
  type Db3Samples,
  l2Between,
  sampleDim,
  sampleIds,
} from "./streams.ts";

/** SD options (reference defaults). */
export interface SdOptions {
  /** Stream images per (sample, class); the reference loops `i = 0..20`, i.e. 21. */
  candidates?: number;
}

/** SD reference defaults. */
export const SD_DEFAULTS: Required<SdOptions> = { candidates: 21 };

/** Result of {@link sampleDistances}: d (n×K, +Infinity at the true class). */
export interface SdResult {
  method: "sd";
  ids: Int32Array;
  y: Int32Array;
  numClasses: number;
  /** d[i·K + t]; Infinity where t = y_i. */
  distances: Float32Array;
  options: Required<SdOptions>;
}

/** Sample distances for every (sample, other class). */
export function sampleDistances(samples: Db3Samples, streams: ClassStreams, opts: SdOptions = {}): SdResult {
  checkNumbers("sampleDistances", opts, { candidates: { integer: true, min: 1 } });
  checkDb3Samples(samples, "sampleDistances samples");
  checkStreams(streams, samples, "sampleDistances");
  const o = { ...SD_DEFAULTS, ...opts };
  const ids = sampleIds(samples);
  const k = samples.numClasses, dim = sampleDim(samples), n = samples.y.length;
  const distances = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      if (t === samples.y[i]) {
        distances[i * k + t] = Infinity;
        continue;
      }
      let best = Infinity;
      for (const j of candidatesFor(streams, ids[i], t, o.candidates)) {
        best = Math.min(best, l2Between(streams.x, j * streams.dim, samples.x, i * dim, dim));
      }
      distances[i * k + t] = best;
    }
  }
  return { method: "sd", ids, y: samples.y, numClasses: k, distances, options: o };
}
