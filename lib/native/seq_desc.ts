/**
 * Describe a feed-forward tfjs `LayersModel` for the native training engine (`seq_train.cpp`): the op
 * records it reads, and the check that its parameter and state layout is the model's
 * `trainableWeights` / `nonTrainableWeights` layout, so flat arrays interchange with `getWeights()`.
 *
 * The model has one input and one output; layers are taken in `model.layers` order (inputs first), each
 * applied once; a layer may feed several others (residual shortcuts). Layer classes (training semantics):
 *
 * | class | becomes | conditions |
 * | --- | --- | --- |
 * | InputLayer, Activation linear, Dropout rate 0 | nothing | |
 * | ZeroPadding2D | folded into every Conv2D it feeds, else pad | channelsLast |
 * | Conv2D | conv (+ relu) | padding valid/same, dilation 1, channelsLast, activation linear/relu |
 * | Dense | dense (+ relu) | flat input, activation linear/relu |
 * | BatchNormalization | bn (batch statistics in training, moving ones in inference) | last axis |
 * | Activation relu | relu | |
 * | MaxPooling2D | maxpool | padding valid/same, channelsLast |
 * | Dropout | dropout (seeded mask, identity in inference) | no noiseShape |
 * | Flatten | flatten (NHWC order, as tfjs) | |
 * | Add | add | two inputs of one shape |
 * | GlobalAveragePooling2D | gap (mean over h×w) | channelsLast, no keepDims |
 *
 * Anything else is an {@link UnsupportedModelError} naming the layer and its class.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { pair, UnsupportedModelError, zeroPaddingOf } from "./plan.ts";

/** Header constants and record size; must match `seq_train.cpp`. */
export const SEQ_MAGIC = 0x424b5331;
export const SEQ_VERSION = 2;
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
  add: 9,
  gap: 10,
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
  "Add",
  "GlobalAveragePooling2D",
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
  /** Input op (−1: the network input). */
  src: number;
  /** add: the second input op. */
  src2?: number;
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

function activationOf(cfg: Config): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return "linear";
  if (typeof a === "string") return a;
  if (typeof a === "object" && "className" in (a as Config)) return String((a as Config).className);
  return String(a);
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

/** A layer output as the engine sees it: the op holding it (−1: the input), its shape, a pending pad. */
interface Val {
  op: number;
  shape: [number, number, number];
  flat: boolean;
  /** A ZeroPadding2D not yet materialised: folded into a consuming Conv2D, else a pad op. */
  pad?: { top: number; bottom: number; left: number; right: number; layer: string; op?: number };
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
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UnsupportedModelError(
      `model ${model.name} has ${model.inputs.length} inputs and ${model.outputs.length} outputs (needs 1 and 1)`,
    );
  }
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  if (
    !inputShape.every((d) => Number.isInteger(d) && d > 0) ||
    (inputShape.length !== 1 && inputShape.length !== 3)
  ) {
    throw new UnsupportedModelError(`model input shape [${inputShape}] must be [h, w, c] or [d]`);
  }
  const ops: SeqOp[] = [];
  const paramVars: unknown[] = [], stateVars: unknown[] = [];
  const vals = new Map<number, Val>();
  vals.set(model.inputs[0].id, {
    op: -1,
    shape: inputShape.length === 3 ? [inputShape[0], inputShape[1], inputShape[2]] : [1, 1, inputShape[0]],
    flat: inputShape.length === 1,
  });
  const emit = (op: SeqOp, flat: boolean): Val => {
    ops.push(op);
    return { op: ops.length - 1, shape: op.out, flat };
  };
  // The op index of `v` with any pending pad materialised (once per padded value).
  const materialise = (v: Val): Val => {
    if (!v.pad) return v;
    const p = v.pad;
    const out: [number, number, number] = [
      v.shape[0] + p.top + p.bottom,
      v.shape[1] + p.left + p.right,
      v.shape[2],
    ];
    if (p.op === undefined) {
      p.op = emit({ kind: "pad", out, pt: p.top, pl: p.left, src: v.op, layer: p.layer }, false).op;
    }
    return { op: p.op, shape: out, flat: false };
  };
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === "InputLayer") continue;
    const cfg = layer.getConfig() as Config;
    const unsupported = (why: string): never => {
      throw new UnsupportedModelError(`layer ${layer.name} (${cls}): ${why}`, layer.name, cls);
    };
    if (layer.inboundNodes.length !== 1) {
      unsupported("is applied more than once (shared layers are not supported)");
    }
    if (!layer.trainable && layer.weights.length > 0) {
      unsupported("is frozen (trainable: false); the native training engine trains every weight");
    }
    const node = layer.inboundNodes[0];
    const inputs = node.inputTensors.map((t) => {
      const v = vals.get(t.id);
      if (!v) return unsupported(`input ${t.name} comes from outside the model`);
      return v;
    });
    if (cls !== "Add" && inputs.length !== 1) unsupported(`has ${inputs.length} inputs (needs 1)`);
    const raw = inputs[0];
    const x = cls === "Conv2D" ? raw : materialise(raw);
    const shape = x.shape;
    const spatial = () => {
      if (x.flat && !raw.pad) unsupported(`needs an [h, w, c] input, gets [${shape[2]}]`);
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== "channelsLast") {
        unsupported(`dataFormat ${cfg.dataFormat} (only channelsLast)`);
      }
    };
    const act = (): boolean => {
      const a = activationOf(cfg);
      if (a !== "linear" && a !== "relu") unsupported(`activation ${a} (only linear or relu)`);
      return a === "relu";
    };
    const relu = (v: Val): Val => emit({ kind: "relu", out: v.shape, src: v.op, layer: layer.name }, v.flat);
    let result: Val;
    switch (cls) {
      case "ZeroPadding2D": {
        spatial();
        const sides = zeroPaddingOf(cfg.padding);
        if (!sides) return unsupported(`padding ${JSON.stringify(cfg.padding)}`);
        const { top, bottom, left, right } = sides;
        result = { ...x, pad: { top, bottom, left, right, layer: layer.name } };
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
        const p = raw.pad ?? { top: 0, bottom: 0, left: 0, right: 0 };
        const [ph, pw] = [shape[0] + p.top + p.bottom, shape[1] + p.left + p.right];
        const y = window(ph, kh, sh, padding), xw = window(pw, kw, sw, padding);
        if (y.out < 1 || xw.out < 1) unsupported("output is empty");
        const bias = cfg.useBias !== false;
        result = emit({
          kind: "conv",
          out: [y.out, xw.out, Number(cfg.filters)],
          kh,
          kw,
          sh,
          sw,
          pt: p.top + y.before,
          pl: p.left + xw.before,
          flags: bias ? 1 : 0,
          src: raw.op,
          layer: layer.name,
        }, false);
        paramVars.push(...layer.trainableWeights);
        if (act()) result = relu(result);
        break;
      }
      case "Dense": {
        if (!x.flat) unsupported(`needs a flat input (Flatten first), gets [${shape}]`);
        const bias = cfg.useBias !== false;
        result = emit({
          kind: "dense",
          out: [1, 1, Number(cfg.units)],
          flags: bias ? 1 : 0,
          src: x.op,
          layer: layer.name,
        }, true);
        paramVars.push(...layer.trainableWeights);
        if (act()) result = relu(result);
        break;
      }
      case "BatchNormalization": {
        const axis = Number(Array.isArray(cfg.axis) ? cfg.axis[0] : cfg.axis ?? -1);
        const rank = x.flat ? 1 : 3;
        if (axis !== -1 && axis !== rank) unsupported(`axis ${axis} (only the last axis)`);
        const center = cfg.center !== false, scale = cfg.scale !== false;
        result = emit({
          kind: "bn",
          out: shape,
          flags: (center ? 1 : 0) | (scale ? 2 : 0),
          f1: Number(cfg.epsilon ?? 1e-3),
          f2: Math.fround(1 - Number(cfg.momentum ?? 0.99)),
          src: x.op,
          layer: layer.name,
        }, x.flat);
        paramVars.push(...layer.trainableWeights);
        stateVars.push(...layer.nonTrainableWeights);
        break;
      }
      case "Activation":
        result = act() ? relu(x) : x;
        break;
      case "MaxPooling2D": {
        spatial();
        const [kh, kw] = pair(cfg.poolSize ?? 2);
        const [sh, sw] = pair(cfg.strides ?? cfg.poolSize ?? 2);
        const padding = String(cfg.padding ?? "valid");
        if (padding !== "valid" && padding !== "same") unsupported(`padding ${padding} (valid or same)`);
        const y = window(shape[0], kh, sh, padding), xw = window(shape[1], kw, sw, padding);
        if (y.out < 1 || xw.out < 1) unsupported("output is empty");
        result = emit({
          kind: "maxpool",
          out: [y.out, xw.out, shape[2]],
          kh,
          kw,
          sh,
          sw,
          pt: y.before,
          pl: xw.before,
          src: x.op,
          layer: layer.name,
        }, false);
        break;
      }
      case "GlobalAveragePooling2D":
        spatial();
        if (cfg.keepDims === true) unsupported("keepDims (not supported)");
        result = emit({ kind: "gap", out: [1, 1, shape[2]], src: x.op, layer: layer.name }, true);
        break;
      case "Add": {
        if (inputs.length !== 2) unsupported(`adds ${inputs.length} tensors (only 2)`);
        const b = materialise(inputs[1]);
        if (b.shape.join() !== shape.join() || b.flat !== x.flat) {
          unsupported(`adds [${shape}] and [${b.shape}] (shapes must match)`);
        }
        result = emit({ kind: "add", out: shape, src: x.op, src2: b.op, layer: layer.name }, x.flat);
        break;
      }
      case "Dropout": {
        if (cfg.noiseShape !== undefined && cfg.noiseShape !== null) {
          unsupported("noiseShape (not supported)");
        }
        const rate = Number(cfg.rate);
        if (!(rate >= 0 && rate < 1)) unsupported(`rate ${rate} (needs 0 ≤ rate < 1)`);
        result = rate > 0
          ? emit({
            kind: "dropout",
            out: shape,
            f1: rate,
            f2: Math.fround(1 / Math.fround(1 - rate)),
            src: x.op,
            layer: layer.name,
          }, x.flat)
          : x;
        break;
      }
      case "Flatten":
        result = x.flat ? x : emit({
          kind: "flatten",
          out: [1, 1, shape[0] * shape[1] * shape[2]],
          src: x.op,
          layer: layer.name,
        }, true);
        break;
      default:
        return unsupported("not supported");
    }
    vals.set(node.outputTensors[0].id, result);
  }
  const outVal = vals.get(model.outputs[0].id);
  if (!outVal || outVal.pad || !outVal.flat || outVal.op !== ops.length - 1 || ops.length === 0) {
    throw new UnsupportedModelError(
      `model ${model.name} does not end in flat logits computed by its last layer (output [${outVal?.shape}])`,
    );
  }
  const classes = outVal.shape[2];
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
    classes,
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
      op.src + 1,
      (op.src2 ?? -1) + 1,
    ], 7 + i * SEQ_RECORD);
  });
  const size = (w: { shape: (number | null)[] }) => (w.shape as number[]).reduce((a, b) => a * b, 1);
  return {
    words,
    ops,
    inputShape,
    inputSize: inputShape.reduce((a, b) => a * b, 1),
    classes,
    paramSizes: model.trainableWeights.map(size),
    stateSizes: model.nonTrainableWeights.map(size),
    dropoutOps: ops.flatMap((op, i) => op.kind === "dropout" ? [i] : []),
  };
}
