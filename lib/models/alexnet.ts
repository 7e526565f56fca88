/**
 * DB3 AlexNet for CIFAR-10 (32×32×3), in the table's layer order:
 *
 *   conv c1 k3 s2 p1 → BN → ReLU → maxpool 2
 *   conv c2 k3 p1 → BN → ReLU → maxpool 2
 *   conv c3 k3 p1 → BN → ReLU
 *   conv c4 k3 p1 → BN → ReLU
 *   conv c5 k3 p1 → BN → ReLU → maxpool 2          (32×32 input ⇒ c5 × 2 × 2)
 *   flatten → fc f → ReLU → dropout 0.5 → BN → fc f → ReLU → dropout 0.5 → BN → fc K (logits)
 *
 * full: c = 64/192/384/256/256, f = 4096 (23.29M trainable params);
 * half: 32/96/192/128/128, f = 2048 (5.8M); quarter: 16/48/96/64/64, f = 1024 (1.5M).
 * Padding is explicit zero padding + `valid` convs, so sizes and padding match PyTorch exactly (also for
 * the stride-2 first conv). BN uses PyTorch defaults (momentum 0.1, ε 1e-5); dropout is unseeded (it only
 * acts in training). Init: PyTorch defaults (see init.ts). Flatten order is NHWC.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { denseInit, type SeedStream } from "./init.ts";
import { apply, batchNorm, conv, maxPool2, relu } from "./layers.ts";

/** Conv channels (five) and fc width of a DB3 AlexNet. */
export interface AlexNetWidths {
  convs: [number, number, number, number, number];
  fc: number;
}

/** DB3 AlexNet widths by variant. */
export const DB3_ALEXNET_WIDTHS: Record<"full" | "half" | "quarter", AlexNetWidths> = {
  full: { convs: [64, 192, 384, 256, 256], fc: 4096 },
  half: { convs: [32, 96, 192, 128, 128], fc: 2048 },
  quarter: { convs: [16, 48, 96, 64, 64], fc: 1024 },
};

/** Build a DB3 AlexNet on `inputShape` = [h, w, c] (32×32×3 in the paper) with `numClasses` logits. */
export function db3AlexNet(
  inputShape: number[],
  numClasses: number,
  w: AlexNetWidths,
  seeds: SeedStream,
  name = "db3-alexnet",
): tfl.LayersModel {
  const [hh, ww, cin] = inputShape;
  const size = (s: number) => Math.floor(Math.floor(Math.floor((Math.floor((s - 1) / 2) + 1) / 2) / 2) / 2);
  if (size(hh) < 1 || size(ww) < 1) {
    throw new Error(`${name}: input ${hh}×${ww} is too small (needs ≥ 16×16)`);
  }
  const [c1, c2, c3, c4, c5] = w.convs;
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x: tfl.SymbolicTensor = input;
  const block = (inC: number, outC: number, stride: number, i: number, pool: boolean) => {
    x = conv(x, inC, { filters: outC, kernel: 3, stride, padding: 1, name: `conv${i}` }, seeds);
    x = apply(batchNorm(`bn${i}`), x);
    x = apply(relu(`relu${i}`), x);
    if (pool) x = apply(maxPool2(`pool${i}`), x);
  };
  block(cin, c1, 2, 1, true);
  block(c1, c2, 1, 2, true);
  block(c2, c3, 1, 3, false);
  block(c3, c4, 1, 4, false);
  block(c4, c5, 1, 5, true);
  x = apply(tfl.layers.flatten({ name: "flatten" }), x);
  let fanIn = c5 * size(hh) * size(ww);
  for (const i of [1, 2]) {
    x = apply(tfl.layers.dense({ units: w.fc, ...denseInit(fanIn, seeds), name: `fc${i}` }), x);
    x = apply(relu(`fc${i}_relu`), x);
    x = apply(tfl.layers.dropout({ rate: 0.5, name: `fc${i}_dropout` }), x);
    x = apply(batchNorm(`fc${i}_bn`), x);
    fanIn = w.fc;
  }
  x = apply(tfl.layers.dense({ units: numClasses, ...denseInit(fanIn, seeds), name: "fc3" }), x);
  return tfl.model({ inputs: input, outputs: x, name });
}
