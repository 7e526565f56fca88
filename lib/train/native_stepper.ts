/**
 * The trainer's native engine path (issue 12): optimizer steps whose loss and gradients come from
 * `lib/native/lenet_grads.ts` (C++, all cores) and whose update is the kit's own `optimizerStep`
 * (`lib/learn/optim.ts`) on one flat parameter array, so the schedules, optimizer state and checkpoints
 * are exactly the tfjs path's. The tfjs model is written only when the trainer asks for weights or
 * labels (evaluation, checkpoints, the end of training), so it always holds the trained weights there.
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
import { gatherBatch, type HostBatch, type Replica } from "../parallel/replica.ts";
import type { Stepper } from "./stepper.ts";

/** Result of {@link openNativeStepper}. */
export type NativeStepperResult = { ok: true; stepper: Stepper; threads: number } | {
  ok: false;
  reason: string;
};

/** Why `model` cannot train natively (undefined when it can, as far as the model goes). */
export function nativeTrainUnsupported(model: tfl.LayersModel): string | undefined {
  const dims = leNetDims(model);
  if (typeof dims === "string") return dims;
  if (model.weights.length !== model.trainableWeights.length) {
    return `model ${model.name} has non-trainable weights; the native trainer covers DB3 LeNet-5s only`;
  }
  return undefined;
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
  threads?: number,
): Promise<NativeStepperResult> {
  const why = nativeTrainUnsupported(local.model);
  if (why) return { ok: false, reason: why };
  const dims = leNetDims(local.model);
  if (typeof dims === "string") return { ok: false, reason: dims };
  const made = await NativeLeNetGrads.tryCreate(dims, threads !== undefined ? { threads } : {});
  if (!made.ok) return { ok: false, reason: made.reason };
  const engine = made.engine;
  const sizes = local.sizes.slice(0, local.numTrainable);
  const flat = new Float32Array(engine.paramCount);
  const grads = new Float32Array(engine.paramCount);
  const params: Float32Array[] = [], gviews: Float32Array[] = [];
  let off = 0;
  sizes.forEach((s, i) => {
    flat.set(local.params[i], off);
    params.push(flat.subarray(off, off + s));
    gviews.push(grads.subarray(off, off + s));
    off += s;
  });
  const opt = state ?? createOptimizerState(optimizer, sizes);
  let dirty = false;
  const sync = () => {
    if (dirty) local.setWeights(params);
    dirty = false;
  };
  const stepper: Stepper = {
    step(idx, hp) {
      const batch = gatherBatch(data, idx);
      const { loss: value } = engine.lossGrads(
        flat,
        batch,
        idx.length,
        nativeLossWeights(loss, idx.length),
        grads,
      );
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
      engine.close();
    },
  };
  return { ok: true, stepper, threads: engine.threads };
}
