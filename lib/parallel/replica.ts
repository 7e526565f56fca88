/**
 * One model replica: a tfjs-layers model plus a plain-array master copy of its weights and the
 * optimizer state. The same class runs in the main thread (in-process training, `workers: 1`) and in
 * every pool worker, so both paths do exactly the same arithmetic.
 *
 * Weight order is `model.weights` = `model.getWeights()` order: trainable weights first, then
 * non-trainable ones (BatchNorm moving mean/variance).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { predictLogits } from "../learn/evaluate.ts";
import { computeLoss, type LossSpec } from "../learn/losses.ts";
import {
  createOptimizerState,
  type OptimizerConfig,
  type OptimizerState,
  optimizerStep,
  type StepParams,
} from "../learn/optim.ts";

/** A batch in host memory: images (row-major, `shape[0]` rows) and what the loss needs. */
export interface HostBatch {
  x: Float32Array;
  /** `[n, ...]` */
  shape: number[];
  y?: Int32Array;
  /** n×K target scores */
  targets?: Float32Array;
}

/** Copy rows `idx` of a row-major data set (and its labels/targets) into a batch. */
export function gatherBatch(d: HostBatch, idx: Int32Array): HostBatch {
  const n = d.shape[0], m = idx.length;
  const dim = d.x.length / n;
  const x = new Float32Array(m * dim);
  for (let i = 0; i < m; i++) x.set(d.x.subarray(idx[i] * dim, (idx[i] + 1) * dim), i * dim);
  const b: HostBatch = { x, shape: [m, ...d.shape.slice(1)] };
  if (d.y) b.y = Int32Array.from(idx, (j) => d.y![j]);
  if (d.targets) {
    const k = d.targets.length / n;
    const t = new Float32Array(m * k);
    for (let i = 0; i < m; i++) t.set(d.targets.subarray(idx[i] * k, (idx[i] + 1) * k), i * k);
    b.targets = t;
  }
  return b;
}

/** Replica of a model that computes gradients and applies optimizer steps on flat arrays. */
export class Replica {
  readonly model: tfl.LayersModel;
  /** Number of trainable weight tensors (the first entries of `model.weights`). */
  readonly numTrainable: number;
  /** Element count of every weight, in `model.weights` order. */
  readonly sizes: number[];
  /** Master copy of the trainable weights. */
  readonly params: Float32Array[];
  #loss?: LossSpec;
  #opt?: { cfg: OptimizerConfig; state: OptimizerState };

  constructor(model: tfl.LayersModel) {
    this.model = model;
    this.numTrainable = model.trainableWeights.length;
    this.sizes = model.weights.map((w) => (w.shape as number[]).reduce((a, b) => a * b, 1));
    this.params = model.trainableWeights.map((w) => w.read().dataSync() as Float32Array).map((a) =>
      a.slice()
    );
  }

  /** Total number of trainable scalars. */
  get numParams(): number {
    let n = 0;
    for (let i = 0; i < this.numTrainable; i++) n += this.sizes[i];
    return n;
  }

  /** Set the loss and optimizer (fresh state unless `state` is given, e.g. from a checkpoint). */
  configure(loss: LossSpec, optimizer: OptimizerConfig, state?: OptimizerState): void {
    this.#loss = loss;
    this.#opt = {
      cfg: optimizer,
      state: state ?? createOptimizerState(optimizer, this.sizes.slice(0, this.numTrainable)),
    };
  }

  /** The optimizer state (live object; copy before sending elsewhere if it must not change). */
  get optimizerState(): OptimizerState | undefined {
    return this.#opt?.state;
  }

  /** All weights as flat arrays, `model.getWeights()` order (copies). */
  getWeights(): Float32Array[] {
    return this.model.weights.map((w, i) =>
      i < this.numTrainable ? this.params[i].slice() : (w.read().dataSync() as Float32Array).slice()
    );
  }

  /** Overwrite all weights (`model.getWeights()` order). */
  setWeights(ws: Float32Array[]): void {
    if (ws.length !== this.sizes.length) {
      throw new Error(`setWeights: got ${ws.length} arrays, the model has ${this.sizes.length} weights`);
    }
    ws.forEach((a, i) => {
      if (a.length !== this.sizes[i]) {
        throw new Error(`setWeights: weight ${i} has ${a.length} values, expected ${this.sizes[i]}`);
      }
      if (i < this.numTrainable) this.params[i].set(a);
    });
    this.#write(0, ws);
  }

  /** Non-trainable weights (e.g. BatchNorm moving statistics), copies. */
  getNonTrainable(): Float32Array[] {
    return this.model.weights.slice(this.numTrainable).map((w) =>
      (w.read().dataSync() as Float32Array).slice()
    );
  }

  /** Overwrite the non-trainable weights. */
  setNonTrainable(ws: Float32Array[]): void {
    this.#write(this.numTrainable, ws);
  }

  /**
   * Loss and gradients of the configured loss on `batch`. Mean terms divide by `total` (the whole
   * batch's size when this is one shard), so shard gradients add up to the whole-batch gradient.
   * Gradients are written into `out` when given (one flat array of `numParams`), else returned.
   */
  gradients(batch: HostBatch, total: number, out?: Float32Array): { loss: number; grads: Float32Array } {
    if (!this.#loss) throw new Error("Replica.configure(loss, optimizer) must be called before training");
    const loss = this.#loss;
    const n = batch.shape[0];
    const flat = out ?? new Float32Array(this.numParams);
    const vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const value = tf.tidy(() => {
      const x = tf.tensor(batch.x, batch.shape);
      const y = batch.y ? tf.tensor1d(batch.y, "int32") : undefined;
      const targets = batch.targets ? tf.tensor2d(batch.targets, [n, batch.targets.length / n]) : undefined;
      const { value, grads } = tf.variableGrads(() => {
        const logits = this.model.apply(x, { training: true }) as tf.Tensor2D;
        return computeLoss(loss, logits, { y, targets }, total);
      }, vars);
      let off = 0;
      for (const v of vars) {
        const g = grads[v.name].dataSync() as Float32Array;
        flat.set(g, off);
        off += g.length;
      }
      return value.dataSync()[0];
    });
    return { loss: value, grads: flat };
  }

  /** Apply one optimizer step with the (summed) flat gradient `grads`. */
  apply(grads: Float32Array, hp: StepParams): void {
    if (!this.#opt) throw new Error("Replica.configure(loss, optimizer) must be called before training");
    const views: Float32Array[] = [];
    let off = 0;
    for (let i = 0; i < this.numTrainable; i++) {
      views.push(grads.subarray(off, off + this.sizes[i]));
      off += this.sizes[i];
    }
    optimizerStep(this.#opt.cfg, this.#opt.state, this.params, views, hp);
    this.#write(0, this.params);
  }

  /** Logits for `n` inputs, evaluated in chunks of `batchSize` (inference mode). */
  predictLogits(x: Float32Array, n: number, batchSize = 1024): Float32Array {
    return predictLogits(this.model, x, n, batchSize);
  }

  #write(start: number, ws: Float32Array[]): void {
    const targets = this.model.weights.slice(start, start + ws.length);
    targets.forEach((w, i) => {
      const t = tf.tensor(ws[i], w.shape as number[]);
      w.write(t);
      t.dispose();
    });
  }
}
