/**
 * GraphModel folders (`tensorflowjs_converter --output_format=tfjs_graph_model`, or ONNX → TF →
 * TF.js) as a tfjs-layers layer, so a graph teacher is wrapped like a LayersModel teacher.
 *
 * `@tensorflow/tfjs-converter` is the only module that can run a GraphModel and it is not (yet) a
 * declared dependency of the kit: it is imported lazily here, and only here, so LayersModel teachers
 * work without it and a GraphModel folder gives a clear error saying what to add.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { TeacherFileError } from "./fs_io.ts";

/** The npm package that executes GraphModels. */
export const CONVERTER_PACKAGE = "@tensorflow/tfjs-converter";

/** The part of a tfjs-converter GraphModel used here. */
export interface GraphModelLike {
  inputs: { shape?: number[] }[];
  outputs: { shape?: number[] }[];
  execute(x: tf.Tensor): tf.Tensor | tf.Tensor[];
  dispose(): void;
}

/** A layer that runs a GraphModel (single input, single output). Not serializable. */
export class GraphModelLayer extends tfl.layers.Layer {
  /** Class name (for messages; the layer is not registered for serialization). */
  static className = "BkdGraphModel";
  readonly graph: GraphModelLike;
  readonly numClasses: number;

  constructor(args: { graph: GraphModelLike; numClasses: number; name?: string }) {
    super({ name: args.name ?? "graph_model", trainable: false });
    this.graph = args.graph;
    this.numClasses = args.numClasses;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return [(inputShape as tfl.Shape)[0], this.numClasses];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const out = this.graph.execute(Array.isArray(inputs) ? inputs[0] : inputs);
    return Array.isArray(out) ? out[0] : out;
  }
}

/**
 * Load a GraphModel through `handler` and wrap it in a {@link GraphModelLayer}. When the folder has
 * no signature giving the output width, one zero image of `probeShape` (model side, no batch axis;
 * default the model's own input shape) is run to read it.
 */
export async function loadGraphLayer(
  handler: tf.io.IOHandler,
  file: string,
  probeShape?: number[],
): Promise<{ layer: GraphModelLayer; inputShape: (number | null)[]; numClasses: number }> {
  let conv: { loadGraphModel(h: tf.io.IOHandler): Promise<GraphModelLike> };
  try {
    const name = CONVERTER_PACKAGE; // a variable: resolved only when a GraphModel is actually loaded
    conv = await import(name);
  } catch (e) {
    throw new TeacherFileError(
      file,
      `is a GraphModel, which needs ${CONVERTER_PACKAGE} (${(e as Error).message.split("\n")[0]})`,
      `add "${CONVERTER_PACKAGE}": "4.22.0" to package.json, or export the model as a LayersModel`,
    );
  }
  const graph = await conv.loadGraphModel(handler);
  const ins = graph.inputs[0]?.shape ?? [];
  const outs = graph.outputs[0]?.shape ?? [];
  const inputShape = ins.slice(1).map((v) => (v === -1 ? null : v));
  let numClasses = outs[outs.length - 1];
  const probe = probeShape ?? (inputShape.every((v) => v !== null) ? (inputShape as number[]) : undefined);
  if (!(numClasses > 0) && probe) {
    const z = tf.tidy(() => {
      const out = graph.execute(tf.zeros([1, ...probe]));
      return (Array.isArray(out) ? out[0] : out).clone();
    });
    numClasses = z.shape[z.shape.length - 1];
    z.dispose();
  }
  if (!(numClasses > 0)) {
    graph.dispose();
    throw new TeacherFileError(file, `its output shape [${outs}] does not give the number of classes`);
  }
  return { layer: new GraphModelLayer({ graph, numClasses }), inputShape, numClasses };
}
