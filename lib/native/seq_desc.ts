/**
 * Describe a sequential tfjs `LayersModel` for the native training engine (`seq_train.cpp`): the op
 * records it reads, and the check that its parameter and state layout is the model's
 * `trainableWeights` / `nonTrainableWeights` layout, so flat arrays interchange with `getWeights()`.
 *
 * The model must be one chain from its input to its output. Layer classes (training semantics):
 *
 * | class | becomes | conditions |
 * | --- | --- | --- |
 * | InputLayer, Activation linear, Dropout rate 0 | nothing | |
 * | ZeroPadding2D | folded into the next Conv2D, else pad | channelsLast |
 * | Conv2D | conv (+ relu) | padding valid/same, dilation 1, channelsLast, activation linear/relu |
 * | Dense | dense (+ relu) | flat input, activation linear/relu |
 * | BatchNormalization | bn (batch statistics in training, moving ones in inference) | last axis |
 * | Activation relu | relu | |
 * | MaxPooling2D | maxpool | padding valid/same, channelsLast |
 * | Dropout | dropout (seeded mask, identity in inference) | no noiseShape |
 * | Flatten | flatten (NHWC order, as tfjs) | |
 *
 * Anything else is an {@link UnsupportedModelError} naming the layer and its class.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { UnsupportedModelError } from "./plan.ts";

/** Header constants and record size; must match `seq_train.cpp`. */
export const SEQ_MAGIC = 0x424b5331;
export const SEQ_VERSION = 1;
export const SEQ_RECORD = 16;
/** Op kinds (as in `seq_train.cpp`). */
export const SEQ_OP = {
  pad: 1,
  conv: 2,
  dense: 3,
  bn: 4,
  relu: 5,
  maxpool: 6,
  dropout: 7,
  flatten: 8,
} as const;

/** Layer classes the training engine understands. */
export const SEQ_TRAIN_LAYERS: readonly string[] = [
  "InputLayer",
  "ZeroPadding2D",
  "Conv2D",
  "Dense",
  "BatchNormalization",
  "Activation",
  "MaxPooling2D",
  "Dropout",
  "Flatten",
];

/** One op of the description. */
export interface SeqOp {
  kind: keyof typeof SEQ_OP;
  /** Output shape per image [h, w, c] (flat: [1, 1, features]). */
  out: [number, number, number];
  /** Kernel / pool window, stride, padding top/left (pad: top, left). */
  kh?: number;
  kw?: number;
  sh?: number;
  sw?: number;
  pt?: number;
  pl?: number;
  /** conv/dense: 1 = bias; bn: 1 = β, 2 = γ. */
  flags?: number;
  /** dropout: rate; bn: ε. */
  f1?: number;
  /** dropout: 1/(1 − rate); bn: decay 1 − momentum (float32). */
  f2?: number;
  /** The tfjs layer it comes from. */
  layer: string;
}

/** A model as the native training engine sees it. */
export interface SeqDesc {
  /** Header + op records for `bkd_seq_create`. */
  words: Int32Array;
  ops: SeqOp[];
  /** Input shape without the batch axis ([h, w, c], or [d] for flat inputs). */
  inputShape: number[];
  /** Floats per input image. */
  inputSize: number;
  /** Logits per image. */
  classes: number;
  /** Element count of every trainable weight, `trainableWeights` order. */
  paramSizes: number[];
  /** Element count of every non-trainable weight (batch-norm moving mean, variance). */
  stateSizes: number[];
  /** Op indices of the dropout ops (for masks in tests). */
  dropoutOps: number[];
}

type Config = Record<string, unknown>;

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[v.length > 1 ? 1 : 0])] : [Number(v), Number(v)];

function activationOf(cfg: Config): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return "linear";
  if (typeof a === "string") return a;
  if (typeof a === "object" && "className" in (a as Config)) return String((a as Config).className);
  return String(a);
}

/** The layers from input to output (InputLayer excluded); throws unless the model is one chain. */
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
        `layer ${layer.name} (${layer.getClassName()}) has ${t.inputs.length} inputs; the native training ` +
          "engine covers single chains only (no residual adds)",
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

/** Output size and top/left padding of a window op along one axis (tfjs `valid` / `same`). */
function window(size: number, k: number, s: number, padding: string): { out: number; before: number } {
  if (padding === "same") {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + k - size, 0);
    return { out, before: Math.floor(total / 2) };
  }
  return { out: Math.floor((size - k) / s) + 1, before: 0 };
}

/**
 * Describe `model` for the native training engine; throws {@link UnsupportedModelError} naming the first
 * layer (and why) it cannot train.
 */
export function describeSeq(model: tfl.LayersModel): SeqDesc {
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (!SEQ_TRAIN_LAYERS.includes(cls)) {
      throw new UnsupportedModelError(
        `layer ${layer.name} (${cls}) is not supported by the native training engine (supported: ${
          SEQ_TRAIN_LAYERS.join(", ")
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
  const ops: SeqOp[] = [];
  const paramVars: unknown[] = [], stateVars: unknown[] = [];
  let shape: [number, number, number] = inputShape.length === 3
    ? [inputShape[0], inputShape[1], inputShape[2]]
    : [1, 1, inputShape[0]];
  let flat = inputShape.length === 1;
  let pendingPad: { top: number; bottom: number; left: number; right: number; layer: string } | undefined;
  const flushPad = () => {
    if (!pendingPad) return;
    const p = pendingPad;
    shape = [shape[0] + p.top + p.bottom, shape[1] + p.left + p.right, shape[2]];
    ops.push({ kind: "pad", out: shape, pt: p.top, pl: p.left, layer: p.layer });
    pendingPad = undefined;
  };
  for (const layer of chain) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Config;
    const unsupported = (why: string): never => {
      throw new UnsupportedModelError(`layer ${layer.name} (${cls}): ${why}`, layer.name, cls);
    };
    if (!layer.trainable && layer.weights.length > 0) {
      unsupported("is frozen (trainable: false); the native training engine trains every weight");
    }
    const spatial = () => {
      if (flat) unsupported(`needs an [h, w, c] input, gets [${shape[2]}]`);
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== "channelsLast") {
        unsupported(`dataFormat ${cfg.dataFormat} (only channelsLast)`);
      }
    };
    const act = (): boolean => {
      const a = activationOf(cfg);
      if (a !== "linear" && a !== "relu") unsupported(`activation ${a} (only linear or relu)`);
      return a === "relu";
    };
    if (cls !== "Conv2D") flushPad();
    switch (cls) {
      case "InputLayer":
        break;
      case "ZeroPadding2D": {
        spatial();
        flushPad();
        const p = cfg.padding as unknown;
        let top: number, bottom: number, left: number, right: number;
        if (typeof p === "number") [top, bottom, left, right] = [p, p, p, p];
        else if (Array.isArray(p) && Array.isArray(p[0])) {
          [top, bottom] = pair(p[0]);
          [left, right] = pair(p[1]);
        } else if (Array.isArray(p)) {
          [top, bottom] = [Number(p[0]), Number(p[0])];
          [left, right] = [Number(p[1]), Number(p[1])];
        } else return unsupported(`padding ${JSON.stringify(p)}`);
        pendingPad = { top, bottom, left, right, layer: layer.name };
        break;
      }
      case "Conv2D": {
        spatial();
        const [dh, dw] = pair(cfg.dilationRate ?? 1);
        if (dh !== 1 || dw !== 1) unsupported(`dilation ${dh}×${dw} (only 1)`);
        const [kh, kw] = pair(cfg.kernelSize);
        const [sh, sw] = pair(cfg.strides ?? 1);
        const padding = String(cfg.padding ?? "valid");
        if (padding !== "valid" && padding !== "same") unsupported(`padding ${padding} (valid or same)`);
        const p = pendingPad ?? { top: 0, bottom: 0, left: 0, right: 0 };
        pendingPad = undefined;
        const [ph, pw] = [shape[0] + p.top + p.bottom, shape[1] + p.left + p.right];
        const y = window(ph, kh, sh, padding), x = window(pw, kw, sw, padding);
        if (y.out < 1 || x.out < 1) unsupported("output is empty");
        const cout = Number(cfg.filters);
        const bias = cfg.useBias !== false;
        shape = [y.out, x.out, cout];
        ops.push({
          kind: "conv",
          out: shape,
          kh,
          kw,
          sh,
          sw,
          pt: p.top + y.before,
          pl: p.left + x.before,
          flags: bias ? 1 : 0,
          layer: layer.name,
        });
        paramVars.push(...layer.trainableWeights);
        if (act()) ops.push({ kind: "relu", out: shape, layer: layer.name });
        break;
      }
      case "Dense": {
        if (!flat) unsupported(`needs a flat input (Flatten first), gets [${shape}]`);
        const units = Number(cfg.units);
        const bias = cfg.useBias !== false;
        shape = [1, 1, units];
        ops.push({ kind: "dense", out: shape, flags: bias ? 1 : 0, layer: layer.name });
        paramVars.push(...layer.trainableWeights);
        if (act()) ops.push({ kind: "relu", out: shape, layer: layer.name });
        break;
      }
      case "BatchNormalization": {
        const axis = Number(Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis ?? -1);
        const rank = flat ? 1 : 3;
        if (axis !== -1 && axis !== rank) unsupported(`axis ${axis} (only the last axis)`);
        const center = cfg.center !== false, scale = cfg.scale !== false;
        ops.push({
          kind: "bn",
          out: shape,
          flags: (center ? 1 : 0) | (scale ? 2 : 0),
          f1: Number(cfg.epsilon ?? 1e-3),
          f2: Math.fround(1 - Number(cfg.momentum ?? 0.99)),
          layer: layer.name,
        });
        paramVars.push(...layer.trainableWeights);
        stateVars.push(...layer.nonTrainableWeights);
        break;
      }
      case "Activation":
        if (act()) ops.push({ kind: "relu", out: shape, layer: layer.name });
        break;
      case "MaxPooling2D": {
        spatial();
        const [kh, kw] = pair(cfg.poolSize ?? 2);
        const [sh, sw] = pair(cfg.strides ?? cfg.poolSize ?? 2);
        const padding = String(cfg.padding ?? "valid");
        if (padding !== "valid" && padding !== "same") unsupported(`padding ${padding} (valid or same)`);
        const y = window(shape[0], kh, sh, padding), x = window(shape[1], kw, sw, padding);
        if (y.out < 1 || x.out < 1) unsupported("output is empty");
        shape = [y.out, x.out, shape[2]];
        ops.push({
          kind: "maxpool",
          out: shape,
          kh,
          kw,
          sh,
          sw,
          pt: y.before,
          pl: x.before,
          layer: layer.name,
        });
        break;
      }
      case "Dropout": {
        if (cfg.noiseShape !== undefined && cfg.noiseShape !== null) {
          unsupported("noiseShape (not supported)");
        }
        const rate = Number(cfg.rate);
        if (!(rate >= 0 && rate < 1)) unsupported(`rate ${rate} (needs 0 ≤ rate < 1)`);
        if (rate > 0) {
          ops.push({
            kind: "dropout",
            out: shape,
            f1: rate,
            f2: Math.fround(1 / Math.fround(1 - rate)),
            layer: layer.name,
          });
        }
        break;
      }
      case "Flatten":
        shape = [1, 1, shape[0] * shape[1] * shape[2]];
        if (!flat) ops.push({ kind: "flatten", out: shape, layer: layer.name });
        flat = true;
        break;
      default:
        unsupported("not supported");
    }
  }
  flushPad();
  if (!flat || shape[0] !== 1 || shape[1] !== 1) {
    throw new UnsupportedModelError(`model ${model.name} does not end in flat logits (output [${shape}])`);
  }
  const same = (a: unknown[], b: unknown[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (!same(paramVars, model.trainableWeights) || !same(stateVars, model.nonTrainableWeights)) {
    throw new UnsupportedModelError(
      `model ${model.name}: its weights are not in layer order (trainable, then batch-norm statistics); ` +
        "the native training engine cannot map them",
    );
  }
  const words = new Int32Array(7 + ops.length * SEQ_RECORD);
  const f32 = new Float32Array(1), i32 = new Int32Array(f32.buffer);
  const bits = (v: number | undefined) => (f32[0] = v ?? 0, i32[0]);
  words.set([
    SEQ_MAGIC,
    SEQ_VERSION,
    ops.length,
    ...(inputShape.length === 3 ? inputShape : [1, 1, inputShape[0]]),
    shape[2],
  ]);
  ops.forEach((op, i) => {
    words.set([
      SEQ_OP[op.kind],
      ...op.out,
      op.kh ?? 0,
      op.kw ?? 0,
      op.sh ?? 0,
      op.sw ?? 0,
      op.pt ?? 0,
      op.pl ?? 0,
      op.flags ?? 0,
      bits(op.f1),
      bits(op.f2),
    ], 7 + i * SEQ_RECORD);
  });
  const size = (w: { shape: (number | null)[] }) => (w.shape as number[]).reduce((a, b) => a * b, 1);
  return {
    words,
    ops,
    inputShape,
    inputSize: inputShape.reduce((a, b) => a * b, 1),
    classes: shape[2],
    paramSizes: model.trainableWeights.map(size),
    stateSizes: model.nonTrainableWeights.map(size),
    dropoutOps: ops.flatMap((op, i) => op.kind === "dropout" ? [i] : []),
  };
}
