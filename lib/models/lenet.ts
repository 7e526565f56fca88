/**
 * LeNet-5 variants.
 *
 * DB3 LeNet-5 (28×28×1 MNIST/Fashion-MNIST):
 *   conv c1 k5 → ReLU → maxpool 2 → conv c2 k5 → ReLU → maxpool 2 → flatten (c2·4·4) → fc h → ReLU → fc K.
 *   full c1/c2/h = 20/50/200 (187,780 params), half 10/25/100 (47,645), fifth 4/10/40 (7,964).
 *
 * CAKE LeNet-5 (classic, on 32×32):
 *   conv c1 k5 → ReLU → maxpool 2 → conv c2 k5 → ReLU → maxpool 2 → conv c3 k5 (→1×1) → ReLU → fc h → ReLU
 *   → fc K.  full 6/16/120, h 84; half 3/8/60, h 42.
 *   Choice: ReLU and max-pooling (not tanh/subsampling). Inputs smaller than 32×32 (e.g. 28×28 MNIST) are
 *   zero-padded symmetrically to 32×32 inside the model, as the original LeNet-5 did for MNIST.
 *
 * Flatten order is NHWC (h, w, c), unlike PyTorch's (c, h, w); this only matters when porting weights.
 * Outputs are logits. Init: PyTorch defaults (see init.ts).
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { denseInit, type SeedStream } from "./init.ts";
import { apply, conv, maxPool2, relu } from "./layers.ts";

/** Widths of a DB3 LeNet-5: conv channels c1, c2 and hidden fc units h. */
export interface Db3LeNetWidths {
  c1: number;
  c2: number;
  h: number;
}

/** DB3 LeNet-5 widths by variant. */
export const DB3_LENET_WIDTHS: Record<"full" | "half" | "fifth", Db3LeNetWidths> = {
  full: { c1: 20, c2: 50, h: 200 },
  half: { c1: 10, c2: 25, h: 100 },
  fifth: { c1: 4, c2: 10, h: 40 },
};

/** Widths of a CAKE (classic) LeNet-5: conv channels c1, c2, c3 and hidden fc units h. */
export interface CakeLeNetWidths {
  c1: number;
  c2: number;
  c3: number;
  h: number;
}

/** CAKE LeNet-5 widths by variant. */
export const CAKE_LENET_WIDTHS: Record<"full" | "half", CakeLeNetWidths> = {
  full: { c1: 6, c2: 16, c3: 120, h: 84 },
  half: { c1: 3, c2: 8, c3: 60, h: 42 },
};

/** Dense layer with PyTorch-default init. */
function fc(units: number, fanIn: number, name: string, seeds: SeedStream): tfl.layers.Layer {
  return tfl.layers.dense({ units, ...denseInit(fanIn, seeds), name });
}

/**
 * DB3 LeNet-5 on `inputShape` = [h, w, c] (28×28×1 in the paper; any size ≥ 16 works, the fc fan-in follows
 * the feature map), `numClasses` logits.
 */
export function db3LeNet5(
  inputShape: number[],
  numClasses: number,
  w: Db3LeNetWidths,
  seeds: SeedStream,
  name = "db3-lenet5",
): tfl.LayersModel {
  const [hh, ww, cin] = inputShape;
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = conv(input, cin, { filters: w.c1, kernel: 5, name: "conv1" }, seeds);
  x = apply(relu("relu1"), x);
  x = apply(maxPool2("pool1"), x);
  x = conv(x, w.c1, { filters: w.c2, kernel: 5, name: "conv2" }, seeds);
  x = apply(relu("relu2"), x);
  x = apply(maxPool2("pool2"), x);
  const flat = Math.floor((Math.floor((hh - 4) / 2) - 4) / 2) *
    Math.floor((Math.floor((ww - 4) / 2) - 4) / 2) *
    w.c2;
  x = apply(tfl.layers.flatten({ name: "flatten" }), x);
  x = apply(fc(w.h, flat, "fc1", seeds), x);
  x = apply(relu("relu3"), x);
  x = apply(fc(numClasses, w.h, "fc2", seeds), x);
  return tfl.model({ inputs: input, outputs: x, name });
}

/**
 * CAKE (classic) LeNet-5 for `inputShape` = [h, w, c] with h, w ≤ 32: zero-pads to 32×32, then
 * conv c1 k5, pool, conv c2 k5, pool, conv c3 k5, fc h, fc K (ReLU between).
 */
export function cakeLeNet5(
  inputShape: number[],
  numClasses: number,
  w: CakeLeNetWidths,
  seeds: SeedStream,
  name = "cake-lenet5",
): tfl.LayersModel {
  const [hh, ww, cin] = inputShape;
  if (hh > 32 || ww > 32) {
    throw new Error(`${name}: input ${hh}×${ww} is larger than the 32×32 it is built for`);
  }
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x: tfl.SymbolicTensor = input;
  if (hh < 32 || ww < 32) {
    const top = Math.floor((32 - hh) / 2), left = Math.floor((32 - ww) / 2);
    x = apply(
      tfl.layers.zeroPadding2d({ padding: [[top, 32 - hh - top], [left, 32 - ww - left]], name: "pad32" }),
      x,
    );
  }
  x = conv(x, cin, { filters: w.c1, kernel: 5, name: "conv1" }, seeds);
  x = apply(relu("relu1"), x);
  x = apply(maxPool2("pool1"), x);
  x = conv(x, w.c1, { filters: w.c2, kernel: 5, name: "conv2" }, seeds);
  x = apply(relu("relu2"), x);
  x = apply(maxPool2("pool2"), x);
  x = conv(x, w.c2, { filters: w.c3, kernel: 5, name: "conv3" }, seeds);
  x = apply(relu("relu3"), x);
  x = apply(tfl.layers.flatten({ name: "flatten" }), x);
  x = apply(fc(w.h, w.c3, "fc1", seeds), x);
  x = apply(relu("relu4"), x);
  x = apply(fc(numClasses, w.h, "fc2", seeds), x);
  return tfl.model({ inputs: input, outputs: x, name });
}
