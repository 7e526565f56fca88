/**
 * Turn a sequential tfjs `LayersModel` into a native-engine plan: the op records `forward.cpp` reads
 * and one flat parameter array (see the encoding at the top of `forward.cpp`).
 *
 * The model must be a single chain from its input to its output (every layer has one input). Supported
 * layer classes (inference semantics):
 *
 * | class | becomes | conditions |
 * | --- | --- | --- |
 * | InputLayer, Dropout, Activation linear | nothing | |
 * | ZeroPadding2D | pad | channelsLast |
 * | Conv2D | conv (kernel `[kh,kw,cin,cout]` as stored, fused ReLU) | padding valid, dilation 1, channelsLast, activation linear/relu |
 * | BatchNormalization | folded into the conv/dense right before it (if that has no activation), else per-channel affine | last axis |
 * | Activation relu | fused into the op before it when that is a conv/dense/affine, else relu | |
 * | MaxPooling2D | maxpool | padding valid, channelsLast |
 * | Flatten | flatten (no-op: tfjs flattens NHWC in (h, w, c) order) | |
 * | Dense | dense (kernel `[in,out]`, fused ReLU) | flat input, activation linear/relu |
 *
 * Anything else raises {@link UnsupportedModelError} naming the layer and its class. Batch norm folds
 * are computed in float64 from the moving statistics: scale = γ/√(var + ε), shift = β − mean·scale.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";

/** The model cannot run on the native engine (the message names the layer and why). */
export class UnsupportedModelError extends Error {
  constructor(message: string, readonly layer?: string, readonly className?: string) {
    super(message);
    this.name = "UnsupportedModelError";
  }
}

/** Plan header constants; must match `forward.cpp`. */
export const PLAN_MAGIC = 0x424b4431;
export const PLAN_VERSION = 1;
/** Words per op record. */
export const PLAN_RECORD = 12;

/** Op kinds (as in `forward.cpp`). */
export const OP = { pad: 1, conv: 2, affine: 3, relu: 4, maxpool: 5, flatten: 6, dense: 7 } as const;

/** One op before encoding (parameters as float arrays). */
export type PlanOp =
  | { kind: "pad"; top: number; bottom: number; left: number; right: number }
  | {
    kind: "conv";
    kh: number;
    kw: number;
    cin: number;
    cout: number;
    sh: number;
    sw: number;
    relu: boolean;
    kernel: Float32Array;
    bias?: Float32Array;
  }
  | { kind: "affine"; channels: number; relu: boolean; scale: Float32Array; shift: Float32Array }
  | { kind: "relu" }
  | { kind: "maxpool"; ph: number; pw: number; sh: number; sw: number }
  | { kind: "flatten" }
  | {
    kind: "dense";
    units: number;
    inputs: number;
    relu: boolean;
    kernel: Float32Array;
    bias?: Float32Array;
  };

/** An encoded plan. */
export interface NativePlan {
  /** Header + op records. */
  words: Int32Array;
  /** All parameters, concatenated. */
  params: Float32Array;
  /** Input shape without the batch axis ([h, w, c] or [d]). */
  inputShape: number[];
  /** Floats per input image. */
  inputSize: number;
  /** Outputs per image (logits). */
  outputSize: number;
  /** Human-readable ops, e.g. "conv 5×5 1→20 relu". */
  ops: string[];
}

/** Layer classes the converter understands. */
export const SUPPORTED_LAYERS: readonly string[] = [
  "InputLayer",
  "ZeroPadding2D",
  "Conv2D",
  "BatchNormalization",
  "Activation",
  "MaxPooling2D",
  "Flatten",
  "Dense",
  "Dropout",
];

type Config = Record<string, unknown>;

/** A tfjs size/stride config (a number or a [h, w] array) as [h, w]. */
export const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[v.length > 1 ? 1 : 0])] : [Number(v), Number(v)];

/** ZeroPadding2D's `padding` config as four sides, or undefined for a form it cannot take. */
export function zeroPaddingOf(
  p: unknown,
): { top: number; bottom: number; left: number; right: number } | undefined {
  if (typeof p === "number") return { top: p, bottom: p, left: p, right: p };
  if (Array.isArray(p) && Array.isArray(p[0])) {
    const [top, bottom] = pair(p[0]), [left, right] = pair(p[1]);
    return { top, bottom, left, right };
  }
  if (Array.isArray(p)) {
    return { top: Number(p[0]), bottom: Number(p[0]), left: Number(p[1]), right: Number(p[1]) };
  }
  return undefined;
}

function activationOf(cfg: Config): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return "linear";
  if (typeof a === "string") return a;
  if (typeof a === "object" && "className" in (a as Config)) return String((a as Config).className);
  return String(a);
}

function layerData(layer: tfl.layers.Layer): Float32Array[] {
  return layer.getWeights().map((t) => Float32Array.from(t.dataSync() as Float32Array));
}

/** The layers from the model input to its output, in order (InputLayer excluded). */
function chainOf(model: tfl.LayersModel): tfl.layers.Layer[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UnsupportedModelError(
      `model ${model.name} has ${model.inputs.length} inputs and ${model.outputs.length} outputs (needs 1 and 1)`,
    );
  }
  const chain: tfl.layers.Layer[] = [];
  let t = model.outputs[0];
  while (t.sourceLayer.getClassName() !== "InputLayer") {
    const layer = t.sourceLayer;
    if (t.inputs.length !== 1) {
      throw new UnsupportedModelError(
        `layer ${layer.name} (${layer.getClassName()}) has ${t.inputs.length} inputs; only single chains are supported`,
        layer.name,
        layer.getClassName(),
      );
    }
    chain.push(layer);
    t = t.inputs[0];
  }
  chain.reverse();
  const inChain = new Set(chain);
  for (const layer of model.layers) {
    if (layer.getClassName() !== "InputLayer" && !inChain.has(layer)) {
      throw new UnsupportedModelError(
        `layer ${layer.name} (${layer.getClassName()}) is not on the input→output chain; only single chains are supported`,
        layer.name,
        layer.getClassName(),
      );
    }
  }
  return chain;
}

/** Fold per-channel `scale`, `shift` into a conv/dense op's kernel (last axis = output) and bias. */
function foldAffine(
  op: Extract<PlanOp, { kind: "conv" | "dense" }>,
  scale: Float64Array,
  shift: Float64Array,
): void {
  const cout = scale.length;
  const k = new Float32Array(op.kernel.length);
  for (let i = 0; i < k.length; i++) k[i] = op.kernel[i] * scale[i % cout];
  const b = new Float32Array(cout);
  for (let c = 0; c < cout; c++) b[c] = (op.bias ? op.bias[c] : 0) * scale[c] + shift[c];
  op.kernel = k;
  op.bias = b;
}

/** Batch-norm inference as scale and shift per channel (float64). */
function batchNormAffine(
  layer: tfl.layers.Layer,
  channels: number,
): { scale: Float64Array; shift: Float64Array } {
  const cfg = layer.getConfig() as Config;
  const eps = Number(cfg.epsilon ?? 1e-3);
  const byName: Record<string, Float32Array> = {};
  const data = layerData(layer);
  layer.weights.forEach((w, i) => {
    const n = (w.originalName ?? w.name).split("/").pop()!.replace(/_\d+$/, "");
    byName[n] = data[i];
  });
  const mean = byName.moving_mean, variance = byName.moving_variance;
  if (!mean || !variance || mean.length !== channels || variance.length !== channels) {
    throw new UnsupportedModelError(
      `layer ${layer.name} (BatchNormalization): moving statistics for ${channels} channels not found`,
      layer.name,
      "BatchNormalization",
    );
  }
  const gamma = byName.gamma, beta = byName.beta;
  const scale = new Float64Array(channels), shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + eps);
    shift[c] = (beta ? beta[c] : 0) - mean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Convert `model` into plan ops (unencoded). Throws {@link UnsupportedModelError} for a layer or
 * structure the engine cannot run.
 */
export function planOps(model: tfl.LayersModel): { ops: PlanOp[]; inputShape: number[] } {
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (!SUPPORTED_LAYERS.includes(cls)) {
      throw new UnsupportedModelError(
        `layer ${layer.name} (${cls}) is not supported by the native engine (supported: ${
          SUPPORTED_LAYERS.join(", ")
        })`,
        layer.name,
        cls,
      );
    }
  }
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  if (
    !inputShape.every((d) => Number.isInteger(d) && d > 0) ||
    (inputShape.length !== 1 && inputShape.length !== 3)
  ) {
    throw new UnsupportedModelError(`model input shape [${inputShape}] must be [h, w, c] or [d]`);
  }
  const chain = chainOf(model);
  const ops: PlanOp[] = [];
  // Current activation shape: [h, w, c] or [d].
  let shape = [...inputShape];
  const channels = () => shape[shape.length - 1];
  const last = () => ops[ops.length - 1];
  for (const layer of chain) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Config;
    const unsupported = (why: string): never => {
      throw new UnsupportedModelError(`layer ${layer.name} (${cls}): ${why}`, layer.name, cls);
    };
    const spatial = () => {
      if (shape.length !== 3) unsupported(`needs an [h, w, c] input, gets [${shape}]`);
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== "channelsLast") {
        unsupported(`dataFormat ${cfg.dataFormat} (only channelsLast)`);
      }
    };
    const act = (): boolean => {
      const a = activationOf(cfg);
      if (a !== "linear" && a !== "relu") unsupported(`activation ${a} (only linear or relu)`);
      return a === "relu";
    };
    switch (cls) {
      case "InputLayer":
      case "Dropout":
        break;
      case "ZeroPadding2D": {
        spatial();
        const sides = zeroPaddingOf(cfg.padding);
        if (!sides) return unsupported(`padding ${JSON.stringify(cfg.padding)}`);
        const { top, bottom, left, right } = sides;
        ops.push({ kind: "pad", top, bottom, left, right });
        shape = [shape[0] + top + bottom, shape[1] + left + right, shape[2]];
        break;
      }
      case "Conv2D": {
        spatial();
        if (cfg.padding !== "valid") unsupported(`padding ${cfg.padding} (only valid; pad explicitly)`);
        const [dh, dw] = pair(cfg.dilationRate ?? 1);
        if (dh !== 1 || dw !== 1) unsupported(`dilation ${dh}×${dw} (only 1)`);
        const [kh, kw] = pair(cfg.kernelSize);
        const [sh, sw] = pair(cfg.strides ?? 1);
        const cout = Number(cfg.filters);
        const relu = act();
        const [kernel, bias] = layerData(layer);
        const cin = channels();
        if (kernel.length !== kh * kw * cin * cout) unsupported(`kernel has ${kernel.length} weights`);
        ops.push({
          kind: "conv",
          kh,
          kw,
          cin,
          cout,
          sh,
          sw,
          relu,
          kernel,
          bias: cfg.useBias === false ? undefined : bias,
        });
        shape = [Math.floor((shape[0] - kh) / sh) + 1, Math.floor((shape[1] - kw) / sw) + 1, cout];
        if (shape[0] < 1 || shape[1] < 1) unsupported("output is empty");
        break;
      }
      case "BatchNormalization": {
        const axis = Number(Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis ?? -1);
        if (axis !== -1 && axis !== shape.length) unsupported(`axis ${axis} (only the last axis)`);
        const c = channels();
        const { scale, shift } = batchNormAffine(layer, c);
        const prev = last();
        if (prev && (prev.kind === "conv" || prev.kind === "dense") && !prev.relu) {
          foldAffine(prev, scale, shift);
        } else {
          ops.push({
            kind: "affine",
            channels: c,
            relu: false,
            scale: Float32Array.from(scale),
            shift: Float32Array.from(shift),
          });
        }
        break;
      }
      case "Activation": {
        if (!act()) break;
        const prev = last();
        if (prev && (prev.kind === "conv" || prev.kind === "dense" || prev.kind === "affine")) {
          prev.relu = true; // relu(relu(x)) = relu(x), so an already fused ReLU is fine too
        } else if (prev?.kind !== "relu") ops.push({ kind: "relu" });
        break;
      }
      case "MaxPooling2D": {
        spatial();
        if (cfg.padding !== undefined && cfg.padding !== "valid") {
          unsupported(`padding ${cfg.padding} (only valid)`);
        }
        const [ph, pw] = pair(cfg.poolSize ?? 2);
        const [sh, sw] = pair(cfg.strides ?? cfg.poolSize ?? 2);
        ops.push({ kind: "maxpool", ph, pw, sh, sw });
        shape = [Math.floor((shape[0] - ph) / sh) + 1, Math.floor((shape[1] - pw) / sw) + 1, shape[2]];
        if (shape[0] < 1 || shape[1] < 1) unsupported("output is empty");
        break;
      }
      case "Flatten":
        if (shape.length !== 1) ops.push({ kind: "flatten" });
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case "Dense": {
        if (shape.length !== 1) unsupported(`needs a flat input (Flatten first), gets [${shape}]`);
        const units = Number(cfg.units);
        const relu = act();
        const [kernel, bias] = layerData(layer);
        if (kernel.length !== shape[0] * units) unsupported(`kernel has ${kernel.length} weights`);
        ops.push({
          kind: "dense",
          units,
          inputs: shape[0],
          relu,
          kernel,
          bias: cfg.useBias === false ? undefined : bias,
        });
        shape = [units];
        break;
      }
      default:
        unsupported("not supported");
    }
  }
  return { ops, inputShape };
}

/** Short description of an op. */
export function describeOp(op: PlanOp): string {
  const r = (b: boolean) => (b ? " relu" : "");
  switch (op.kind) {
    case "pad":
      return `pad ${op.top},${op.bottom},${op.left},${op.right}`;
    case "conv":
      return `conv ${op.kh}×${op.kw}/${op.sh}×${op.sw} ${op.cin}→${op.cout}${r(op.relu)}`;
    case "affine":
      return `affine ${op.channels}${r(op.relu)}`;
    case "relu":
      return "relu";
    case "maxpool":
      return `maxpool ${op.ph}×${op.pw}/${op.sh}×${op.sw}`;
    case "flatten":
      return "flatten";
    case "dense":
      return `dense ${op.inputs}→${op.units}${r(op.relu)}`;
  }
}

/** Encode plan ops for `bkd_plan_create`. */
export function encodePlan(ops: PlanOp[], inputShape: number[]): NativePlan {
  const [h, w, c] = inputShape.length === 3 ? inputShape : [1, 1, inputShape[0]];
  const words = new Int32Array(6 + ops.length * PLAN_RECORD);
  words.set([PLAN_MAGIC, PLAN_VERSION, h, w, c, ops.length]);
  const chunks: Float32Array[] = [];
  let offset = 0;
  const put = (a?: Float32Array): number => {
    if (!a) return -1;
    chunks.push(a);
    offset += a.length;
    return offset - a.length;
  };
  ops.forEach((op, i) => {
    let rec: number[];
    switch (op.kind) {
      case "pad":
        rec = [OP.pad, op.top, op.bottom, op.left, op.right];
        break;
      case "conv":
        rec = [
          OP.conv,
          op.kh,
          op.kw,
          op.cin,
          op.cout,
          op.sh,
          op.sw,
          op.relu ? 1 : 0,
          put(op.kernel),
          put(op.bias),
        ];
        break;
      case "affine":
        rec = [OP.affine, op.channels, op.relu ? 1 : 0, put(op.scale), put(op.shift)];
        break;
      case "relu":
        rec = [OP.relu];
        break;
      case "maxpool":
        rec = [OP.maxpool, op.ph, op.pw, op.sh, op.sw];
        break;
      case "flatten":
        rec = [OP.flatten];
        break;
      case "dense":
        rec = [OP.dense, op.inputs, op.units, op.relu ? 1 : 0, put(op.kernel), put(op.bias)];
        break;
    }
    words.set(rec, 6 + i * PLAN_RECORD);
  });
  if (offset >= 2 ** 31) throw new UnsupportedModelError(`model has ${offset} parameters (limit 2^31)`);
  const params = new Float32Array(offset);
  let at = 0;
  for (const a of chunks) {
    params.set(a, at);
    at += a.length;
  }
  // Output size: the last op that changes it (dense), else the final spatial shape.
  let shape = inputShape.length === 3 ? [h, w, c] : [c];
  for (const op of ops) {
    if (op.kind === "pad") shape = [shape[0] + op.top + op.bottom, shape[1] + op.left + op.right, shape[2]];
    else if (op.kind === "conv") {
      shape = [
        Math.floor((shape[0] - op.kh) / op.sh) + 1,
        Math.floor((shape[1] - op.kw) / op.sw) + 1,
        op.cout,
      ];
    } else if (op.kind === "maxpool") {
      shape = [
        Math.floor((shape[0] - op.ph) / op.sh) + 1,
        Math.floor((shape[1] - op.pw) / op.sw) + 1,
        shape[2],
      ];
    } else if (op.kind === "dense") shape = [op.units];
  }
  return {
    words,
    params,
    inputShape: [...inputShape],
    inputSize: h * w * c,
    outputSize: shape.reduce((a, b) => a * b, 1),
    ops: ops.map(describeOp),
  };
}

/** Convert and encode `model` (see the module doc). */
export function buildPlan(model: tfl.LayersModel): NativePlan {
  const { ops, inputShape } = planOps(model);
  return encodePlan(ops, inputShape);
}
