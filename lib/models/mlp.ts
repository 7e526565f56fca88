/**
 * CAKE MLP: flatten → Linear(in, h) + ReLU → `depth` × [Linear(h, h) + ReLU] → Linear(h, K) (logits).
 *
 * Toy 2-D problems use h = 20, depth = 2; MNIST uses h = 100, depth = 4 (the defaults here). Inputs of any
 * shape are flattened first, so the same builder serves points ([d]) and images ([h, w, c]).
 * Init: PyTorch defaults (see init.ts).
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { denseInit, type SeedStream } from "./init.ts";
import { apply } from "./layers.ts";

/** MLP size: hidden units `hidden` and number of extra hidden layers `depth`. */
export interface MlpOptions {
  hidden: number;
  depth: number;
}

/** Defaults (the MNIST setting). */
export const MLP_DEFAULTS: MlpOptions = { hidden: 100, depth: 4 };

/** Build the MLP on `inputShape` with `numClasses` logits. */
export function mlp(
  inputShape: number[],
  numClasses: number,
  o: MlpOptions,
  seeds: SeedStream,
  name = "mlp",
): tfl.LayersModel {
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x: tfl.SymbolicTensor = input;
  if (inputShape.length > 1) x = apply(tfl.layers.flatten({ name: "flatten" }), x);
  let fanIn = inputShape.reduce((a, b) => a * b, 1);
  for (let i = 0; i <= o.depth; i++) {
    x = apply(
      tfl.layers.dense({
        units: o.hidden,
        activation: "relu",
        ...denseInit(fanIn, seeds),
        name: `fc${i + 1}`,
      }),
      x,
    );
    fanIn = o.hidden;
  }
  x = apply(tfl.layers.dense({ units: numClasses, ...denseInit(fanIn, seeds), name: "logits" }), x);
  return tfl.model({ inputs: input, outputs: x, name });
}
