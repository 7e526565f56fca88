/**
 * The trainer's native engine path (issue 12): optimizer steps whose loss and gradients come from the
 * native training engine (C++, all cores) and whose update is the kit's own `optimizerStep`
 * (`lib/learn/optim.ts`) on one flat parameter array, so the schedules, optimizer state and checkpoints
 * are exactly the tfjs path's. DB3 LeNet-5s run on their dedicated kernel (`lib/native/lenet_grads.ts`,
 * the fastest on them); every other feed-forward network (AlexNets, CAKE LeNets, CNN, MLP, ResNets) on
 * the general one (`lib/native/seq_train.ts`), which also keeps the batch norms' moving statistics and
 * draws dropout masks from (seed, optimizer step), so a run is reproducible and a resumed run draws the
 * masks a straight one would. The tfjs model is written only when the trainer asks for weights or labels
 * (evaluation, checkpoints, the end of training), so it always holds the trained weights there.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { argmaxRows } from "../learn/evaluate.ts";
import type { LossSpec } from "../learn/losses.ts";
import {
  createOptimizerState,
  type OptimizerConfig,
  type OptimizerState,
  optimizerStep,
} from "../learn/optim.ts";
import { leNetDims, NativeLeNetGrads, nativeLossWeights } from "../native/lenet_grads.ts";
import { UnsupportedModelError } from "../native/plan.ts";
import { describeSeq } from "../native/seq_desc.ts";
import { NativeSeqTrainer } from "../native/seq_train.ts";
import { gatherBatch, type HostBatch, type Replica } from "../parallel/replica.ts";
import type { Stepper } from "./stepper.ts";

/** Result of {@link openNativeStepper}. */
export type NativeStepperResult = { ok: true; stepper: Stepper; threads: number; kernel: NativeKernel } | {
  ok: false;
  reason: string;
};

/** Which native kernel trains a model: the DB3 LeNet-5 one, or the general feed-forward one. */
export type NativeKernel = "lenet" | "seq";

/** The native kernel for `model`, or why it cannot train natively. */
export function nativeKernelFor(model: tfl.LayersModel): NativeKernel | { reason: string } {
  if (typeof leNetDims(model) !== "string" && model.weights.length === model.trainableWeights.length) {
    return "lenet";
  }
  try {
    describeSeq(model);
    return "seq";
  } catch (e) {
    if (e instanceof UnsupportedModelError) return { reason: e.message };
    throw e;
  }
}

/** Why `model` cannot train natively (undefined when it can, as far as the model goes). */
export function nativeTrainUnsupported(model: tfl.LayersModel): string | undefined {
  const k = nativeKernelFor(model);
  return typeof k === "string" ? undefined : k.reason;
}

/** The dropout seed of optimizer step `step` of a run seeded with `seed` (64 bits: seed, step). */
export function dropoutSeed(seed: number, step: number): bigint {
  return (BigInt(seed >>> 0) << 32n) | BigInt(step >>> 0);
}

/** Options of {@link openNativeStepper}. */
export interface NativeStepperOptions {
  /** Native threads (default: all cores). */
  threads?: number;
  /** The run's seed: dropout masks are a function of it and the optimizer step (default 0). */
  seed?: number;
}

/**
 * A native stepper over `local`'s model (its current weights are the start), or the reason why not
 * (unsupported model, engine disabled or not buildable).
 */
export async function openNativeStepper(
  local: Replica,
  data: HostBatch,
  loss: LossSpec,
  optimizer: OptimizerConfig,
  state: OptimizerState | undefined,
  evalBatch: number,
  opts: NativeStepperOptions = {},
): Promise<NativeStepperResult> {
  const kernel = nativeKernelFor(local.model);
  if (typeof kernel !== "string") return { ok: false, reason: kernel.reason };
  const threads = opts.threads !== undefined ? { threads: opts.threads } : {};
  let lossGrads: (
    flat: Float32Array,
    batch: HostBatch,
    n: number,
    grads: Float32Array,
    step: number,
  ) => number;
  let paramCount: number, engineThreads: number, close: () => void;
  // Batch-norm moving statistics (the model's non-trainable weights), updated by every seq step.
  const stats = new Float32Array(local.sizes.slice(local.numTrainable).reduce((a, b) => a + b, 0));
  if (kernel === "lenet") {
    const dims = leNetDims(local.model);
    if (typeof dims === "string") return { ok: false, reason: dims };
    const made = await NativeLeNetGrads.tryCreate(dims, threads);
    if (!made.ok) return { ok: false, reason: made.reason };
    const engine = made.engine;
    lossGrads = (flat, batch, n, grads) =>
      engine.lossGrads(flat, batch, n, nativeLossWeights(loss, n), grads).loss;
    paramCount = engine.paramCount, engineThreads = engine.threads, close = () => engine.close();
  } else {
    const made = await NativeSeqTrainer.tryCreate(local.model, threads);
    if (!made.ok) return { ok: false, reason: made.reason };
    const engine = made.engine;
    let off = 0;
    for (const w of local.getNonTrainable()) stats.set(w, off), off += w.length;
    const seed = opts.seed ?? 0;
    lossGrads = (flat, batch, n, grads, step) =>
      engine.lossGrads(flat, stats, batch, n, nativeLossWeights(loss, n), {
        out: grads,
        seed: dropoutSeed(seed, step),
      }).loss;
    paramCount = engine.paramCount, engineThreads = engine.threads, close = () => engine.close();
  }
  const sizes = local.sizes.slice(0, local.numTrainable);
  const flat = new Float32Array(paramCount);
  const grads = new Float32Array(paramCount);
  const params: Float32Array[] = [], gviews: Float32Array[] = [];
  let off = 0;
  sizes.forEach((s, i) => {
    flat.set(local.params[i], off);
    params.push(flat.subarray(off, off + s));
    gviews.push(grads.subarray(off, off + s));
    off += s;
  });
  const statViews: Float32Array[] = [];
  off = 0;
  for (const s of local.sizes.slice(local.numTrainable)) statViews.push(stats.subarray(off, off += s));
  const opt = state ?? createOptimizerState(optimizer, sizes);
  let dirty = false;
  const sync = () => {
    if (dirty) local.setWeights([...params, ...statViews]);
    dirty = false;
  };
  const stepper: Stepper = {
    step(idx, hp) {
      const batch = gatherBatch(data, idx);
      const value = lossGrads(flat, batch, idx.length, grads, opt.step);
      optimizerStep(optimizer, opt, params, gviews, hp);
      dirty = true;
      return Promise.resolve(value);
    },
    weights() {
      sync();
      return Promise.resolve(local.getWeights());
    },
    optimizerState: () => Promise.resolve(opt),
    labels(x, n) {
      sync();
      return Promise.resolve(argmaxRows(local.predictLogits(x, n, evalBatch), n));
    },
    close() {
      sync();
      close();
    },
  };
  return { ok: true, stepper, threads: engineThreads, kernel };
}
