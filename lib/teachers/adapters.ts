/**
 * Input adapters: make a model trained elsewhere see the kit's images the way it was trained.
 *
 * The kit's images are NHWC float32 in [0,1]. A model exported from PyTorch usually wants NCHW,
 * often normalised per channel (`(x − mean) / std`), sometimes on a [0,255] scale. An adapter maps
 * x (NHWC, [0,1]) to
 *
 *     u = lo + x·(hi − lo)            value range, `range: [lo, hi]` (default [0, 1])
 *     v = (u − mean[c]) / std[c]      per channel, in the units of `range` (default: none)
 *     NHWC → NCHW                     `layout: "NCHW"` (default "NHWC")
 *
 * in tf ops (differentiable, so a wrapped teacher works at every access level, `logits+grad`
 * included) and on plain arrays (for remote endpoints, {@link adaptArray}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";

/** Tensor layout a model expects. */
export type Layout = "NHWC" | "NCHW";

/** How a model expects its input (see the module doc). */
export interface InputAdapterOptions {
  /** Layout of the model's input (default "NHWC"). */
  layout?: Layout;
  /** Value range the model was trained on; [0,1] images are mapped onto it (default [0, 1]). */
  range?: readonly [number, number];
  /** Per-channel mean, in the units of `range` (e.g. PyTorch MNIST: [0.1307] with range [0,1]). */
  mean?: readonly number[];
  /** Per-channel standard deviation, in the units of `range` (default 1 per channel). */
  std?: readonly number[];
}

/** An adapter with every default filled in. */
export interface ResolvedAdapter {
  layout: Layout;
  range: [number, number];
  mean: number[] | null;
  std: number[] | null;
}

/** Fill in defaults and validate (`channels` checks mean/std lengths when given). */
export function resolveAdapter(opts: InputAdapterOptions = {}, channels?: number): ResolvedAdapter {
  const layout = opts.layout ?? "NHWC";
  if (layout !== "NHWC" && layout !== "NCHW") throw new Error(`input adapter: unknown layout ${layout}`);
  const range: [number, number] = [opts.range?.[0] ?? 0, opts.range?.[1] ?? 1];
  if (!(range[1] > range[0])) throw new Error(`input adapter: range [${range}] must be increasing`);
  const mean = opts.mean ? [...opts.mean] : null;
  const std = opts.std ? [...opts.std] : null;
  const c = mean?.length ?? std?.length;
  if (mean && std && mean.length !== std.length) {
    throw new Error(`input adapter: mean has ${mean.length} channels, std ${std.length}`);
  }
  if (c !== undefined && channels !== undefined && c !== 1 && c !== channels) {
    throw new Error(`input adapter: mean/std have ${c} channels but the images have ${channels}`);
  }
  if (std?.some((s) => !(s > 0))) throw new Error(`input adapter: std [${std}] must be positive`);
  return { layout, range, mean, std };
}

/** True when the adapter changes nothing. */
export function isIdentityAdapter(a: ResolvedAdapter): boolean {
  return a.layout === "NHWC" && a.range[0] === 0 && a.range[1] === 1 && !a.mean && !a.std;
}

/** Model-side input shape (no batch axis) for kit images of shape `nhwc` ([h,w,c] or [d]). */
export function modelShapeOf(nhwc: readonly number[], a: ResolvedAdapter): number[] {
  if (a.layout === "NCHW" && nhwc.length === 3) return [nhwc[2], nhwc[0], nhwc[1]];
  return [...nhwc];
}

/** Kit (NHWC) image shape for a model-side input shape. */
export function kitShapeOf(modelShape: readonly number[], a: ResolvedAdapter): number[] {
  if (a.layout === "NCHW" && modelShape.length === 3) return [modelShape[1], modelShape[2], modelShape[0]];
  return [...modelShape];
}

/** Apply the adapter to a batch tensor `x` ([n, h, w, c] or [n, d]) with tf ops (differentiable). */
export function adaptTensor(x: tf.Tensor, a: ResolvedAdapter): tf.Tensor {
  return tf.tidy(() => {
    let u = x;
    const [lo, hi] = a.range;
    if (hi - lo !== 1) u = tf.mul(u, hi - lo);
    if (lo !== 0) u = tf.add(u, lo);
    if (a.mean) u = tf.sub(u, tf.tensor1d(a.mean));
    if (a.std) u = tf.div(u, tf.tensor1d(a.std));
    if (a.layout === "NCHW" && u.rank === 4) u = tf.transpose(u, [0, 3, 1, 2]);
    return u;
  });
}

/**
 * Apply the adapter to `n` flat NHWC images of shape `shape` (no batch axis) on the CPU; returns the
 * model-side batch (NCHW when asked). Same arithmetic as {@link adaptTensor}, in float32.
 */
export function adaptArray(
  x: Float32Array,
  n: number,
  shape: readonly number[],
  a: ResolvedAdapter,
): Float32Array {
  const d = shape.reduce((p, q) => p * q, 1);
  const c = shape.length === 3 ? shape[2] : shape[shape.length - 1];
  const out = new Float32Array(n * d);
  const [lo, hi] = a.range;
  const span = hi - lo;
  const mean = a.mean, std = a.std;
  const nchw = a.layout === "NCHW" && shape.length === 3;
  const hw = nchw ? shape[0] * shape[1] : 0;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let k = 0; k < d; k++) {
      const ch = k % c;
      let v = x[o + k];
      if (span !== 1) v = Math.fround(v * span);
      if (lo !== 0) v = Math.fround(v + lo);
      if (mean) v = Math.fround(v - mean[mean.length === 1 ? 0 : ch]);
      if (std) v = Math.fround(v / std[std.length === 1 ? 0 : ch]);
      out[o + (nchw ? ch * hw + ((k - ch) / c) : k)] = v;
    }
  }
  return out;
}

/** Serializable layer applying an input adapter (see {@link adaptTensor}). */
export class InputAdapterLayer extends tfl.layers.Layer {
  /** Class name for serialization. */
  static className = "BkdInputAdapter";
  readonly adapter: ResolvedAdapter;

  constructor(args: { adapter: ResolvedAdapter; name?: string }) {
    super({ name: args.name });
    this.adapter = args.adapter;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = inputShape as tfl.Shape;
    if (this.adapter.layout === "NCHW" && s.length === 4) return [s[0], s[3], s[1], s[2]];
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return adaptTensor(Array.isArray(inputs) ? inputs[0] : inputs, this.adapter);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), adapter: this.adapter as unknown as tf.serialization.ConfigDict };
  }
}
tf.serialization.registerClass(InputAdapterLayer);

/** Serializable layer turning probabilities into logits-like scores z = log max(p, 1e-38). */
export class LogProbsLayer extends tfl.layers.Layer {
  /** Class name for serialization. */
  static className = "BkdLogProbs";

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return inputShape as tfl.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const p = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.log(tf.maximum(p, 1e-38)));
  }
}
tf.serialization.registerClass(LogProbsLayer);
