/**
 * Teachers from files: a TF.js LayersModel (or GraphModel) folder becomes an ordinary
 * `tf.LayersModel` that takes the kit's NHWC [0,1] images and returns logits, so it plugs into
 * `labelOracle`, `probsOracle` and `logitsGradOracle` like a kit-trained teacher.
 *
 * The input adapter (layout, value range, per-channel mean/std; see `adapters.ts`) is folded into the
 * wrapper as its first layer; a model that ends in softmax is declared with `output: "probs"` and
 * gets z = log p appended (softmax(z) = p, argmax unchanged). A model whose input shape does not fit
 * the images it will see raises {@link TeacherShapeError} naming both shapes.
 *
 * GraphModels need `@tensorflow/tfjs-converter`, imported lazily from `graph.ts` only.
 *
 * @module
 */
import * as tfl from "@tensorflow/tfjs-layers";
import {
  InputAdapterLayer,
  type InputAdapterOptions,
  isIdentityAdapter,
  kitShapeOf,
  LogProbsLayer,
  modelShapeOf,
  resolveAdapter,
  type ResolvedAdapter,
} from "./adapters.ts";
import { fileSystemIO, TeacherFileError } from "./fs_io.ts";
import { loadGraphLayer } from "./graph.ts";

/** A model's input shape does not fit the images it is asked to label. */
export class TeacherShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TeacherShapeError";
  }
}

/** Model folder formats. */
export type ModelFormat = "layers-model" | "graph-model";

/** Options of {@link loadTeacher} and {@link wrapTeacher}. */
export interface LoadTeacherOptions {
  /** How the model expects its input (default: NHWC, [0,1], no normalisation). */
  input?: InputAdapterOptions;
  /** What the model outputs: "logits" (default) or "probs" (ends in softmax: z = log p is added). */
  output?: "logits" | "probs";
  /**
   * The images the teacher will see: a dataset (`{shape: [n,h,w,c], name}`) or one image's NHWC shape.
   * Checked against the model's input shape; also fills in unknown (null) model dimensions.
   */
  expect?: { shape: number[]; name?: string } | number[];
  /** Folder format (default: read from model.json). */
  format?: ModelFormat | "auto";
  /** Name of the wrapper model (default "teacher"). */
  name?: string;
}

/** Where a file teacher came from. */
export interface TeacherSourceInfo {
  dir: string;
  format: ModelFormat;
  generatedBy: string | null;
  convertedBy: string | null;
  /** The model's own input shape (no batch axis; null = any size). */
  modelInputShape: (number | null)[];
  /** The adapter in force. */
  adapter: ResolvedAdapter;
  output: "logits" | "probs";
}

/** A teacher loaded from files. */
export interface FileTeacher {
  /** NHWC [0,1] in, logits out: pass to labelOracle / probsOracle / logitsGradOracle. */
  model: tfl.LayersModel;
  /** Kit-side image shape (NHWC, no batch axis). */
  inputShape: number[];
  numClasses: number;
  source: TeacherSourceInfo;
}

function fmtShape(s: readonly (number | null)[]): string {
  return `[${s.map((v) => (v === null || v === -1 ? "?" : v)).join(", ")}]`;
}

function expectedShape(e: LoadTeacherOptions["expect"]): { shape: number[]; what: string } | undefined {
  if (!e) return undefined;
  if (Array.isArray(e)) return { shape: e, what: "the images" };
  return { shape: e.shape.slice(1), what: `dataset ${e.name ?? "(unnamed)"}` };
}

/**
 * The kit-side (NHWC) input shape for a model input shape under an adapter, checked against the
 * expected images. Throws {@link TeacherShapeError} naming both shapes.
 */
export function fitInputShape(
  modelShape: readonly (number | null)[],
  adapter: ResolvedAdapter,
  expect?: LoadTeacherOptions["expect"],
): number[] {
  const exp = expectedShape(expect);
  const kitSide = kitShapeOf(modelShape as number[], adapter) as (number | null)[];
  if (!exp) {
    if (kitSide.some((v) => v === null || v === -1)) {
      throw new TeacherShapeError(
        `the model's input shape ${
          fmtShape(modelShape)
        } has unknown dimensions; pass \`expect\` (the dataset)`,
      );
    }
    return kitSide as number[];
  }
  const ok = kitSide.length === exp.shape.length &&
    kitSide.every((v, i) => v === null || v === -1 || v === exp.shape[i]);
  if (!ok) {
    const asModel = fmtShape(modelShapeOf(exp.shape, adapter));
    throw new TeacherShapeError(
      `teacher input shape ${fmtShape(modelShape)} (${adapter.layout}) does not match ${exp.what} with ` +
        `images ${fmtShape(exp.shape)} (NHWC, i.e. ${asModel} in the model's ${adapter.layout} layout). ` +
        `Check the adapter's layout (NHWC/NCHW) or use a dataset the model was trained for.`,
    );
  }
  return [...exp.shape];
}

/**
 * Wrap a model (own input layout/range) so it takes kit images: adapter layer → model → (log if
 * probs). Returns the wrapper and the kit-side shape.
 */
export function wrapTeacher(
  inner: tfl.LayersModel | tfl.layers.Layer,
  modelInputShape: readonly (number | null)[],
  numClasses: number,
  opts: LoadTeacherOptions = {},
): { model: tfl.LayersModel; inputShape: number[]; adapter: ResolvedAdapter } {
  const kitGuess = kitShapeOf(modelInputShape as number[], resolveAdapter({ layout: opts.input?.layout }));
  const channels = kitGuess.length === 3 ? kitGuess[2] ?? undefined : undefined;
  const adapter = resolveAdapter(opts.input, channels ?? undefined);
  const inputShape = fitInputShape(modelInputShape, adapter, opts.expect);
  const inp = tfl.input({ shape: inputShape, name: "kit_images" });
  let h = isIdentityAdapter(adapter)
    ? inp
    : new InputAdapterLayer({ adapter, name: "input_adapter" }).apply(inp) as tfl.SymbolicTensor;
  h = inner.apply(h) as tfl.SymbolicTensor;
  if (opts.output === "probs") h = new LogProbsLayer({ name: "log_probs" }).apply(h) as tfl.SymbolicTensor;
  const outShape = h.shape;
  if (outShape.length !== 2 || (outShape[1] !== null && outShape[1] !== numClasses)) {
    throw new TeacherShapeError(`teacher output shape ${fmtShape(outShape)} is not [batch, ${numClasses}]`);
  }
  return { model: tfl.model({ inputs: inp, outputs: h, name: opts.name ?? "teacher" }), inputShape, adapter };
}

async function detectFormat(dir: string): Promise<{ format: ModelFormat; json: Record<string, unknown> }> {
  const file = `${dir}/model.json`;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    const problem = e instanceof Deno.errors.NotFound ? "is missing" : `cannot be read as JSON (${e})`;
    throw new TeacherFileError(
      file,
      problem,
      "point loadTeacher at a TF.js model folder (model.json + shards)",
    );
  }
  const f = json.format;
  if (f === "layers-model" || f === "graph-model") return { format: f, json };
  const topo = json.modelTopology as Record<string, unknown> | undefined;
  if (topo && ("node" in topo || "library" in topo)) return { format: "graph-model", json };
  return { format: "layers-model", json };
}

/**
 * Load a TF.js model folder as a kit teacher (see the module doc). The returned `model` takes NHWC
 * [0,1] images of shape `inputShape` and returns logits (n × numClasses).
 */
export async function loadTeacher(dir: string, opts: LoadTeacherOptions = {}): Promise<FileTeacher> {
  const root = dir.replace(/\/+$/, "");
  const { format: detected, json } = await detectFormat(root);
  const format = !opts.format || opts.format === "auto" ? detected : opts.format;
  const meta = {
    generatedBy: typeof json.generatedBy === "string" ? json.generatedBy : null,
    convertedBy: typeof json.convertedBy === "string" ? json.convertedBy : null,
  };
  let inner: tfl.LayersModel | tfl.layers.Layer;
  let modelInputShape: (number | null)[];
  let numClasses: number;
  if (format === "layers-model") {
    let m: tfl.LayersModel;
    try {
      m = await tfl.loadLayersModel(fileSystemIO(root));
    } catch (e) {
      if (e instanceof TeacherFileError) throw e;
      throw new TeacherFileError(
        `${root}/model.json`,
        `tfjs-layers cannot build it (${(e as Error).message})`,
        "export with a layer set TF.js supports (tensorflowjs_converter --output_format=tfjs_layers_model)",
      );
    }
    inner = m;
    modelInputShape = m.inputs[0].shape.slice(1);
    const out = m.outputs[0].shape;
    numClasses = out[out.length - 1] as number;
  } else {
    const exp = expectedShape(opts.expect);
    const probe = exp ? modelShapeOf(exp.shape, resolveAdapter({ layout: opts.input?.layout })) : undefined;
    const g = await loadGraphLayer(fileSystemIO(root), `${root}/model.json`, probe);
    inner = g.layer;
    modelInputShape = g.inputShape;
    numClasses = g.numClasses;
  }
  const w = wrapTeacher(inner, modelInputShape, numClasses, opts);
  return {
    model: w.model,
    inputShape: w.inputShape,
    numClasses,
    source: {
      dir: root,
      format,
      ...meta,
      modelInputShape,
      adapter: w.adapter,
      output: opts.output ?? "logits",
    },
  };
}

/** Save a LayersModel as a TF.js LayersModel folder (`model.json` + `weights.bin`). */
export async function saveTeacherFolder(model: tfl.LayersModel, dir: string): Promise<void> {
  await model.save(fileSystemIO(dir));
}
