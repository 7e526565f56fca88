/**
 * CAKE CNN for 28×28 inputs (valid padding, ReLU after every conv):
 *
 *   conv 32 k3 → conv 64 k4 → maxpool 2 → conv 64 k3 → maxpool 2 → conv 64 k3 → maxpool 2 → flatten
 *   → fc K (logits).   28 → 26 → 23 → 11 → 9 → 4 → 2 → 1, so the fc sees 64 features (64 → K).
 *
 * Init: PyTorch defaults (see init.ts).
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { denseInit, type SeedStream } from "./init.ts";
import { apply, conv, maxPool2, relu } from "./layers.ts";

/** Build the CAKE CNN on `inputShape` = [h, w, c] (28×28×1 in the paper) with `numClasses` logits. */
export function cakeCnn(
  inputShape: number[],
  numClasses: number,
  seeds: SeedStream,
  name = "cake-cnn",
): tfl.LayersModel {
  const [hh, ww, cin] = inputShape;
  const size = (s: number) => Math.floor((Math.floor((s - 5) / 2) - 2) / 2) - 2;
  const last = (s: number) => Math.floor(size(s) / 2);
  if (last(hh) < 1 || last(ww) < 1) {
    throw new Error(`${name}: input ${hh}×${ww} is too small (needs ≥ 25×25)`);
  }
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = conv(input, cin, { filters: 32, kernel: 3, name: "conv1" }, seeds);
  x = apply(relu("relu1"), x);
  x = conv(x, 32, { filters: 64, kernel: 4, name: "conv2" }, seeds);
  x = apply(relu("relu2"), x);
  x = apply(maxPool2("pool2"), x);
  x = conv(x, 64, { filters: 64, kernel: 3, name: "conv3" }, seeds);
  x = apply(relu("relu3"), x);
  x = apply(maxPool2("pool3"), x);
  x = conv(x, 64, { filters: 64, kernel: 3, name: "conv4" }, seeds);
  x = apply(relu("relu4"), x);
  x = apply(maxPool2("pool4"), x);
  x = apply(tfl.layers.flatten({ name: "flatten" }), x);
  const fanIn = 64 * last(hh) * last(ww);
  x = apply(tfl.layers.dense({ units: numClasses, ...denseInit(fanIn, seeds), name: "fc" }), x);
  return tfl.model({ inputs: input, outputs: x, name });
}
