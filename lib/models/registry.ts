/**
 * Model registry: one plain-JSON {@link ModelSpec} names a network; {@link buildModel} turns it into a
 * tfjs-layers model whose output is logits (no softmax), input NHWC (or [d] for points).
 *
 * | name | network (see the builder's file) |
 * | --- | --- |
 * | db3-lenet5 / -half / -fifth | DB3 LeNet-5, 28×28 (lenet.ts) |
 * | db3-alexnet / -half / -quarter | DB3 AlexNet for 32×32×3 (alexnet.ts) |
 * | cake-lenet5 / -half | classic LeNet-5 on 32×32, smaller inputs padded (lenet.ts) |
 * | cake-cnn | CAKE 4-conv CNN for 28×28 (cnn.ts) |
 * | mlp | options {hidden = 100, depth = 4} (mlp.ts) |
 * | resnet18 / resnet34 / resnet | CIFAR-style ResNet; "resnet" takes options {depth, width} (resnet.ts) |
 * | vit8 / vit4 | small-dataset ViT, patch 4, dim 64, depth 8 / 4 (vit.ts) |
 *
 * Building is deterministic: the same spec and seed give bit-identical initial weights.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { checkSeed } from "../util/checks.ts";
import { SeedStream } from "./init.ts";
import { CAKE_LENET_WIDTHS, cakeLeNet5, DB3_LENET_WIDTHS, db3LeNet5 } from "./lenet.ts";
import { mlp, MLP_DEFAULTS } from "./mlp.ts";
import { DB3_ALEXNET_WIDTHS, db3AlexNet } from "./alexnet.ts";
import { cakeCnn } from "./cnn.ts";
import { resnet } from "./resnet.ts";
import { vit, VIT_DEFAULTS, type VitOptions } from "./vit.ts";

/** Every network the kit can build. */
export type ModelName =
  | "db3-lenet5"
  | "db3-lenet5-half"
  | "db3-lenet5-fifth"
  | "db3-alexnet"
  | "db3-alexnet-half"
  | "db3-alexnet-quarter"
  | "cake-lenet5"
  | "cake-lenet5-half"
  | "cake-cnn"
  | "mlp"
  | "resnet18"
  | "resnet34"
  | "resnet"
  | "vit8"
  | "vit4";

/** All model names, in table order. */
export const MODEL_NAMES: readonly ModelName[] = [
  "db3-lenet5",
  "db3-lenet5-half",
  "db3-lenet5-fifth",
  "db3-alexnet",
  "db3-alexnet-half",
  "db3-alexnet-quarter",
  "cake-lenet5",
  "cake-lenet5-half",
  "cake-cnn",
  "mlp",
  "resnet18",
  "resnet34",
  "resnet",
  "vit8",
  "vit4",
];

/**
 * A network, as plain JSON (a worker or a checkpoint can rebuild it).
 * `inputShape` excludes the batch axis: [h, w, c] for images, [d] for points.
 */
export interface ModelSpec {
  name: ModelName;
  inputShape: number[];
  numClasses: number;
  /** Per-network numeric options, e.g. mlp {hidden, depth}, resnet {depth, width}, vit {pool}. */
  options?: Record<string, number>;
}

/** Build `spec` with initial weights drawn from `seed`. Throws a descriptive error for a bad spec. */
export function buildModel(spec: ModelSpec, seed: number): tfl.LayersModel {
  checkSpec(spec);
  checkSeed(seed, `buildModel(${spec.name})`);
  const seeds = new SeedStream(seed);
  const { name, inputShape: s, numClasses: k } = spec;
  const o = spec.options ?? {};
  switch (name) {
    case "db3-lenet5":
      return db3LeNet5(s, k, DB3_LENET_WIDTHS.full, seeds, name);
    case "db3-lenet5-half":
      return db3LeNet5(s, k, DB3_LENET_WIDTHS.half, seeds, name);
    case "db3-lenet5-fifth":
      return db3LeNet5(s, k, DB3_LENET_WIDTHS.fifth, seeds, name);
    case "cake-lenet5":
      return cakeLeNet5(s, k, CAKE_LENET_WIDTHS.full, seeds, name);
    case "cake-lenet5-half":
      return cakeLeNet5(s, k, CAKE_LENET_WIDTHS.half, seeds, name);
    case "mlp":
      return mlp(
        s,
        k,
        {
          hidden: o.hidden ?? MLP_DEFAULTS.hidden,
          depth: o.depth ?? MLP_DEFAULTS.depth,
        },
        seeds,
        name,
      );
    case "db3-alexnet":
      return db3AlexNet(s, k, DB3_ALEXNET_WIDTHS.full, seeds, name);
    case "db3-alexnet-half":
      return db3AlexNet(s, k, DB3_ALEXNET_WIDTHS.half, seeds, name);
    case "db3-alexnet-quarter":
      return db3AlexNet(s, k, DB3_ALEXNET_WIDTHS.quarter, seeds, name);
    case "cake-cnn":
      return cakeCnn(s, k, seeds, name);
    case "resnet18":
      return resnet(s, k, 18, seeds, o.width ?? 64, name);
    case "resnet34":
      return resnet(s, k, 34, seeds, o.width ?? 64, name);
    case "resnet": {
      if (o.depth === undefined) {
        throw new Error(`buildModel: "resnet" needs options.depth (e.g. {depth: 8})`);
      }
      return resnet(s, k, o.depth, seeds, o.width ?? 64, `resnet${o.depth}`);
    }
    case "vit8":
    case "vit4": {
      const v: VitOptions = { ...VIT_DEFAULTS, depth: name === "vit8" ? 8 : 4 };
      for (const key of Object.keys(v) as (keyof VitOptions)[]) if (o[key] !== undefined) v[key] = o[key];
      return vit(s, k, v, seeds, name);
    }
  }
}

/** One row of a {@link ModelSummary}. */
export interface LayerSummary {
  name: string;
  type: string;
  outputShape: (number | null)[];
  params: number;
}

/** What {@link describeModel} returns: sizes for tables. */
export interface ModelSummary {
  name: ModelName;
  /** Trainable parameters (what PyTorch counts as parameters). */
  params: number;
  /** All weights including batch-norm moving statistics. */
  totalWeights: number;
  layers: LayerSummary[];
}

/** Number of trainable scalars in `model`. */
export function countParams(model: tfl.LayersModel): number {
  return sizeOf(model.trainableWeights);
}

function sizeOf(ws: { shape: (number | null)[] | null }[]): number {
  let n = 0;
  for (const w of ws) n += (w.shape ?? []).reduce((a: number, b) => a * (b ?? 1), 1);
  return n;
}

/** Build `spec` once (seed 0), summarise its layers and parameter counts, and dispose it. */
export function describeModel(spec: ModelSpec): ModelSummary {
  const model = buildModel(spec, 0);
  try {
    const layers = model.layers.map((l) => {
      const params = sizeOf(l.trainableWeights);
      const shape = l.outputShape;
      return {
        name: l.name,
        type: l.getClassName(),
        outputShape: (Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[],
        params,
      };
    });
    return { name: spec.name, params: countParams(model), totalWeights: model.countParams(), layers };
  } finally {
    model.dispose();
  }
}

function checkSpec(spec: ModelSpec): void {
  const where = `model spec ${JSON.stringify(spec)}`;
  if (!MODEL_NAMES.includes(spec.name)) {
    throw new Error(`${where}: unknown name; expected one of ${MODEL_NAMES.join(", ")}`);
  }
  if (!Array.isArray(spec.inputShape) || spec.inputShape.length === 0) {
    throw new Error(`${where}: inputShape must be [h, w, c] or [d] (no batch axis)`);
  }
  if (!spec.inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${where}: inputShape entries must be positive integers`);
  }
  if (!Number.isInteger(spec.numClasses) || spec.numClasses < 1) {
    throw new Error(`${where}: numClasses must be a positive integer`);
  }
  if (spec.name !== "mlp" && spec.inputShape.length !== 3) {
    throw new Error(`${where}: ${spec.name} needs an image inputShape [h, w, c]`);
  }
}
