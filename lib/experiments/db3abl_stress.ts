/**
 * The remedies part's transfer set (notebook 13): the DB3 table's transfer set plus a few training
 * images the teacher misclassifies, found by scanning training images with label queries and labelled
 * with the same BD/MBD settings, so the 1/d blow-up and its remedies can be seen at all (a ~99%-accurate
 * teacher leaves few or none in a few hundred images).
 *
 * @module
 */
import { type LabeledData, loadDataset, subset } from "../data/mod.ts";
import { labelDistances } from "../db3/label_run.ts";
import { makeClassStreams } from "../db3/streams.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import { Rng } from "../util/rng.ts";
import type { Db3TableResult } from "./db3.ts";
import type { Db3AblationConfig, StressSet } from "./db3abl_spec.ts";

/**
 * Base transfer set plus up to `add` training images the teacher misclassifies (found by scanning the
 * first `scan` training images with label queries through `oracle`), with BD/MBD distances for the
 * added ones (the oracle's ledger counts both).
 */
export async function buildStressSet(
  base: Db3TableResult,
  settings: Db3AblationConfig,
  seed: number,
  oracle: LabelOracle,
): Promise<StressSet> {
  const trainSet = await loadDataset(base.dataset, "train");
  const scan = Math.min(settings.stress.scan, trainSet.y.length);
  const dim = trainSet.shape.slice(1).reduce((a, b) => a * b, 1);
  const ans = await oracle.labels(trainSet.x.subarray(0, scan * dim), scan, { phase: "stress.scan" });
  const wrong: number[] = [];
  for (let i = 0; i < scan; i++) if (ans.labels[i] !== trainSet.y[i]) wrong.push(i);
  const rng = new Rng(seed + 7);
  const added = Array.from(rng.permutation(wrong.length).subarray(0, settings.stress.add), (j) => wrong[j])
    .sort((a, b) => a - b);
  const extra = subset(trainSet, Int32Array.from(added));
  const n0 = base.samples.y.length, k = base.samples.numClasses;
  const d = await labelDistances(
    oracle,
    {
      x: extra.x,
      y: extra.y,
      shape: extra.shape,
      numClasses: k,
      ids: Int32Array.from(added, (_, j) => n0 + j),
    },
    makeClassStreams(trainSet, seed),
    {
      method: "mbd",
      bd: settings.table.bd,
      mbd: { ...settings.table.mbd, seed },
      progress: false,
    },
  );
  const cat = (a: Float32Array, b: Float32Array) => {
    const o = new Float32Array(a.length + b.length);
    o.set(a);
    o.set(b, a.length);
    return o;
  };
  const samples: LabeledData = {
    ...base.samples,
    x: cat(base.samples.x, extra.x),
    y: Int32Array.from([...base.samples.y, ...extra.y]),
    shape: [n0 + added.length, ...base.samples.shape.slice(1)],
  };
  const bdBase = base.distances.bd!, mbdBase = base.distances.mbd!;
  return {
    scanned: scan,
    found: wrong.length,
    added,
    samples,
    distances: { bd: cat(bdBase.distances, d.bdDistances!), mbd: cat(mbdBase.distances, d.distances) },
    teacherLabels: Int32Array.from([...bdBase.teacherLabels, ...d.teacherLabels]),
    labelQueries: oracle.ledger.snapshot().totals.images.label - scan,
  };
}
