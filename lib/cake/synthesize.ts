/**
 * CAKE synthesis: a transfer set scattered around the teacher's decision boundaries, made from noise
 * through a `logits+grad` oracle only (no training data, no teacher internals).
 *
 * For every batch m = 0..M−1 (step size η_m from {@link stepSize}):
 * 1. X ~ N(0, I) with shape [R, G, ...inputShape] (B = R·G samples, kept flat as [B, ...inputShape]);
 *    each row r draws G distinct target classes.
 * 2. T steps of plain SGD (no momentum) with lr η_m on
 *    w_cls·L_cls + w_contr·L_contr + w_tv·L_tv (+ w_ent·L_ent). The logit terms and their input
 *    gradient come from `oracle.valueAndGrad` (teacher frozen, booked as forward + backward per image);
 *    the TV gradient is computed locally (it does not involve the teacher). With LAKE on, Langevin
 *    noise X ← X + sqrt(2η_m)·N(0, I) follows every step.
 * 3. The teacher's logits on the final X are the soft targets (students take softmax at τ = 1);
 *    η_m is stored with every sample.
 *
 * Input spaces: X lives in the teacher's normalised space; the teacher sees u = X·std + mean
 * ({@link CakeOptions.normalization}); dL/dX = std · dL/du by the chain rule. The kit's teachers take
 * [0,1] images, so for MNIST (mean 0.1307, std 0.3081) u is what the teacher — and later the student —
 * is fed, and the returned `x` is u (unclamped). L_tv is measured on X, as in the reference.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LogitsGradOracle } from "../oracle/oracle.ts";
import type { LedgerSnapshot } from "../oracle/ledger.ts";
import { createProgress, type Progress } from "../show/progress.ts";
import { Rng } from "../util/rng.ts";
import { type BatchCache, type BatchRecord, openBatchCache } from "./checkpoint.ts";
import { logitsObjective, lossTv, lossTvGrad } from "./losses.ts";
import { type CakeDataset, type CakeOptions, type CakeOptionsInput, resolveCakeOptions } from "./options.ts";
import { stepSize } from "./schedule.ts";
import { agreement, argmaxRows, type SyntheticSet } from "./types.ts";

/** A CAKE transfer set: a {@link SyntheticSet} plus η per sample and the run's settings. */
export interface CakeTransferSet extends SyntheticSet {
  /** η_m of the batch each sample came from. */
  eta: Float32Array;
  /** Batch index m of each sample. */
  batch: Int32Array;
  /** Teacher images passed forward / backward over all batches, including ones resumed from a cache
   * (the ledger only holds this process's passes: cached batches cost nothing again). */
  passes: { forward: number; backward: number };
  /** The resolved options (all knobs). */
  options: CakeOptions;
  /** Run statistics. */
  stats: CakeStats;
}

/** Statistics of a synthesis run. */
export interface CakeStats {
  /** Wall-clock seconds of this call. */
  seconds: number;
  /** Batches computed in this call / loaded from the cache. */
  batchesComputed: number;
  batchesResumed: number;
  /** Throughput of the computed batches: samples × steps per second. */
  sampleStepsPerSec: number;
  /** Finished samples per second (computed batches). */
  samplesPerSec: number;
  /** Fraction of samples whose final teacher class is their target class. */
  hitRate: number;
  /** Objective value at the last step of each batch (without L_tv when w_tv = 0). */
  lastLoss: number[];
}

/** Optional callback, called after every batch (for notebooks that draw as they go). */
export type BatchListener = (rec: BatchRecord, done: number, total: number) => void;

/**
 * Synthesise a CAKE transfer set through a `logits+grad` teacher. The caller passes only the teacher
 * oracle: no training data can be touched here.
 *
 * @param oracle teacher behind `logits+grad` access (its inputShape/numClasses decide the shapes)
 * @param input options over the defaults of `input.dataset` (default: "mnist" for image teachers,
 *   "two-moons" for point teachers); see {@link CakeOptions}
 * @param onBatch optional listener called after each finished batch
 */
export async function synthesize(
  oracle: LogitsGradOracle,
  input: CakeOptionsInput = {},
  onBatch?: BatchListener,
): Promise<CakeTransferSet> {
  if (oracle.access !== "logits+grad") {
    throw new Error(`CAKE needs logits+grad access, got "${oracle.access}"`);
  }
  const inputShape = oracle.inputShape.slice();
  const k = oracle.numClasses;
  const fallback: CakeDataset = inputShape.length >= 2 ? "mnist" : "two-moons";
  const o = resolveCakeOptions(input, fallback);
  if (o.groups > k) throw new Error(`cake: groups G = ${o.groups} exceeds the number of classes K = ${k}`);
  const dim = inputShape.reduce((a, b) => a * b, 1);
  const t0 = performance.now();

  const cache: BatchCache | undefined = o.cacheDir
    ? await openBatchCache(o.cacheDir, fingerprint(o, inputShape, k))
    : undefined;
  const label = typeof o.progress === "string" ? o.progress : "cake synthesis";
  const bar: Progress | undefined = o.progress === false
    ? undefined
    : createProgress({ label, total: o.numBatches * o.steps, unit: "step" });

  const records: BatchRecord[] = [];
  let computed = 0;
  let computeSec = 0;
  for (let m = 0; m < o.numBatches; m++) {
    let rec = cache ? await cache.load(m) : undefined;
    if (!rec) {
      rec = await synthesizeBatch(oracle, o, m, inputShape, k, (step, loss) => {
        const done = m * o.steps + step;
        const rate = computeSec > 0 ? (computed * o.batchSize * o.steps) / computeSec : NaN;
        bar?.update(done, info(m, o, etaOf(o, m), loss, rate));
      });
      computed++;
      computeSec += rec.seconds;
      if (cache) await cache.save(rec);
    }
    records.push(rec);
    bar?.update((m + 1) * o.steps);
    onBatch?.(rec, m + 1, o.numBatches);
  }

  const set = assemble(records, inputShape, dim, k, o, oracle.ledger.snapshot());
  const n = computed * o.batchSize;
  set.stats = {
    seconds: (performance.now() - t0) / 1000,
    batchesComputed: computed,
    batchesResumed: o.numBatches - computed,
    sampleStepsPerSec: computeSec > 0 ? (n * o.steps) / computeSec : NaN,
    samplesPerSec: computeSec > 0 ? n / computeSec : NaN,
    hitRate: agreement(set.teacherClass, set.targetClass),
    lastLoss: records.map((r) => r.lastLoss),
  };
  bar?.done(`${set.shape[0]} samples, hit rate ${(100 * set.stats.hitRate).toFixed(1)}%`);
  return set;
}

/**
 * One synthesis batch m: noise → T SGD steps at η_m → final teacher logits. Deterministic given
 * (options.seed, m), so a resumed run produces the same batches as an uninterrupted one.
 */
export async function synthesizeBatch(
  oracle: LogitsGradOracle,
  o: CakeOptions,
  m: number,
  inputShape: number[],
  numClasses: number,
  onStep?: (step: number, loss: number) => void,
): Promise<BatchRecord> {
  const t0 = performance.now();
  const b = o.batchSize;
  const g = o.groups;
  const dim = inputShape.reduce((a, c) => a * c, 1);
  const eta = etaOf(o, m);
  const rng = new Rng(batchSeed(o.seed, m));
  const initRng = rng.fork();
  const classRng = rng.fork();
  const noiseRng = rng.fork();

  const targetClass = drawTargetClasses(b / g, g, numClasses, classRng);
  const shape = [b, ...inputShape];
  const affine = normalizationTensors(o.normalization, inputShape);
  const y = tf.tensor1d(targetClass, "int32");
  const w = o.weights;
  const lossOfLogits = (z: tf.Tensor2D) => logitsObjective(z, y, g, w);
  const toTeacher = (xs: tf.Tensor) =>
    affine ? tf.tidy(() => tf.add(tf.mul(xs, affine.std), affine.mean)) : xs;

  let x: tf.Tensor = tf.tensor(initRng.fillNormal(new Float32Array(b * dim)), shape);
  let lastLoss = NaN;
  const noise = o.langevin ? new Float32Array(b * dim) : undefined;
  try {
    for (let step = 0; step < o.steps; step++) {
      const u = toTeacher(x);
      const { loss, logits, dx } = await oracle.valueAndGrad(u, lossOfLogits, o.phase);
      if (u !== x) u.dispose();
      logits.dispose();
      lastLoss = loss;
      const next = tf.tidy(() => {
        let grad = affine ? tf.mul(dx, affine.std) : dx;
        if (w.tv !== 0) grad = tf.add(grad, tf.mul(lossTvGrad(x), w.tv));
        let nx = tf.sub(x, tf.mul(grad, eta));
        if (noise) nx = tf.add(nx, tf.mul(tf.tensor(noiseRng.fillNormal(noise), shape), Math.sqrt(2 * eta)));
        return nx;
      });
      dx.dispose();
      x.dispose();
      x = next;
      if (!Number.isFinite(loss)) {
        throw new Error(`CAKE batch ${m}: objective became ${loss} at step ${step} (η = ${eta}); lower eta0`);
      }
      onStep?.(step + 1, loss);
    }
    if (w.tv !== 0 && o.steps > 0) lastLoss += w.tv * tf.tidy(() => lossTv(x).dataSync()[0]);
    const u = toTeacher(x);
    const z = await oracle.logits(u, `${o.phase}.final`);
    const logits = z.dataSync().slice() as Float32Array;
    const xOut = u.dataSync().slice() as Float32Array;
    z.dispose();
    if (u !== x) u.dispose();
    return {
      m,
      eta,
      n: b,
      dim,
      numClasses,
      x: xOut,
      logits,
      targetClass,
      lastLoss,
      seconds: (performance.now() - t0) / 1000,
      passes: { forward: b * (o.steps + 1), backward: b * o.steps },
    };
  } finally {
    x.dispose();
    y.dispose();
    affine?.mean.dispose();
    affine?.std.dispose();
  }
}

/**
 * Target classes of one batch, row-major over [R, G]: each row gets G distinct classes, the first G
 * entries of a random permutation of 0..K−1.
 */
export function drawTargetClasses(rows: number, groups: number, numClasses: number, rng: Rng): Int32Array {
  const out = new Int32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    const perm = rng.permutation(numClasses);
    for (let i = 0; i < groups; i++) out[r * groups + i] = perm[i];
  }
  return out;
}

/** η_m for these options. */
export function etaOf(o: CakeOptions, m: number): number {
  return stepSize(m, o.numBatches, { eta0: o.eta0, decades: o.decades, kind: o.decay });
}

/** Seed of batch m's private generator (independent of how many batches ran before). */
function batchSeed(seed: number, m: number): number {
  return ((seed >>> 0) ^ Math.imul(m + 1, 0x9e3779b1)) >>> 0;
}

function normalizationTensors(
  nrm: CakeOptions["normalization"],
  inputShape: number[],
): { mean: tf.Tensor; std: tf.Tensor } | undefined {
  if (!nrm) return undefined;
  const c = inputShape[inputShape.length - 1];
  const expand = (v: number[]) => {
    if (v.length !== 1 && v.length !== c) {
      throw new Error(`cake normalization has ${v.length} channels, the teacher's input has ${c}`);
    }
    return v.length === 1 ? tf.scalar(v[0]) : tf.tensor1d(v);
  };
  return { mean: expand(nrm.mean), std: expand(nrm.std) };
}

function assemble(
  records: BatchRecord[],
  inputShape: number[],
  dim: number,
  k: number,
  o: CakeOptions,
  ledger: LedgerSnapshot,
): CakeTransferSet {
  const n = records.reduce((a, r) => a + r.n, 0);
  const x = new Float32Array(n * dim);
  const targets = new Float32Array(n * k);
  const eta = new Float32Array(n);
  const batch = new Int32Array(n);
  const targetClass = new Int32Array(n);
  const passes = { forward: 0, backward: 0 };
  let off = 0;
  for (const r of records) {
    x.set(r.x, off * dim);
    targets.set(r.logits, off * k);
    eta.fill(r.eta, off, off + r.n);
    batch.fill(r.m, off, off + r.n);
    targetClass.set(r.targetClass, off);
    passes.forward += r.passes.forward;
    passes.backward += r.passes.backward;
    off += r.n;
  }
  return {
    method: "cake",
    x,
    shape: [n, ...inputShape],
    targets,
    numClasses: k,
    eta,
    batch,
    targetClass,
    teacherClass: argmaxRows(targets, k),
    ledger,
    passes,
    options: o,
    stats: undefined as unknown as CakeStats,
  };
}

function fingerprint(o: CakeOptions, inputShape: number[], k: number) {
  const { cacheDir: _c, progress: _p, ...knobs } = o;
  return { kind: "cake-synthesis", version: 1, inputShape, numClasses: k, ...knobs };
}

function info(m: number, o: CakeOptions, eta: number, loss: number, rate: number): string {
  const r = Number.isFinite(rate) ? `  ${Math.round(rate).toLocaleString("en-US")} sample·step/s` : "";
  return `batch ${m + 1}/${o.numBatches}  η=${eta.toExponential(1)}  L=${loss.toPrecision(4)}${r}`;
}
