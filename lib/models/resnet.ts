/**
 * CIFAR-style ResNets (CAKE teachers and the paper's depth/scale chart).
 *
 *   stem: conv 3×3 s1 p1, `width` (64) channels, no bias → BN → ReLU      (no max-pool)
 *   stages i = 0..S−1: `blocks[i]` residual blocks with `width·2^i` planes; the first block of stages i > 0
 *     has stride 2; a 1×1 conv (no bias) + BN projection shortcut is used whenever shape changes
 *   global average pool → fc K (logits)
 *
 * BasicBlock: conv3×3(stride) → BN → ReLU → conv3×3 → BN, + shortcut, ReLU (expansion 1).
 * Bottleneck (torchvision v1.5): conv1×1 → BN → ReLU → conv3×3(stride) → BN → ReLU → conv1×1 (4× planes)
 * → BN, + shortcut, ReLU (expansion 4).
 *
 * Depths: BasicBlock 4 [1], 6 [1,1], 8 [1,1,1], 10 [1,1,1,1], 18 [2,2,2,2] (11.2M params at K = 10),
 * 34 [3,4,6,3] (21.3M); Bottleneck 50 [3,4,6,3], 101 [3,4,23,3], 152 [3,8,36,3]. Depth counts the weighted
 * layers on the main path (convs + fc); the small depths drop whole stages, keeping channel doubling.
 * 3×3 convs use explicit padding 1 (PyTorch semantics for stride 2). BN: PyTorch defaults. Init:
 * torchvision's (Kaiming-normal fan-out for convs, BN γ = 1 β = 0, PyTorch-default fc).
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { denseInit, kaimingNormalFanOut, type SeedStream } from "./init.ts";
import { apply, batchNorm, conv, relu, type Sym } from "./layers.ts";

/** Block type and per-stage block counts of a ResNet depth. */
export interface ResNetLayout {
  block: "basic" | "bottleneck";
  blocks: number[];
}

/** Supported depths. */
export const RESNET_LAYOUTS: Record<number, ResNetLayout> = {
  4: { block: "basic", blocks: [1] },
  6: { block: "basic", blocks: [1, 1] },
  8: { block: "basic", blocks: [1, 1, 1] },
  10: { block: "basic", blocks: [1, 1, 1, 1] },
  18: { block: "basic", blocks: [2, 2, 2, 2] },
  34: { block: "basic", blocks: [3, 4, 6, 3] },
  50: { block: "bottleneck", blocks: [3, 4, 6, 3] },
  101: { block: "bottleneck", blocks: [3, 4, 23, 3] },
  152: { block: "bottleneck", blocks: [3, 8, 36, 3] },
};

/** The layout for `depth`, or an error listing the supported depths. */
export function resnetLayout(depth: number): ResNetLayout {
  const l = RESNET_LAYOUTS[depth];
  if (!l) {
    throw new Error(`resnet: depth ${depth} is not supported; use one of ${Object.keys(RESNET_LAYOUTS)}`);
  }
  return l;
}

/** Build a CIFAR-style ResNet of `depth` on `inputShape` = [h, w, c]; `width` is the stem/stage-1 width. */
export function resnet(
  inputShape: number[],
  numClasses: number,
  depth: number,
  seeds: SeedStream,
  width = 64,
  name = `resnet${depth}`,
): tfl.LayersModel {
  const layout = resnetLayout(depth);
  const expansion = layout.block === "basic" ? 1 : 4;
  const input = tfl.input({ shape: inputShape, name: "input" });
  let x = conv3(input, inputShape[2], width, 1, "stem_conv", seeds);
  x = apply(batchNorm("stem_bn"), x);
  x = apply(relu("stem_relu"), x);
  let inC = width;
  layout.blocks.forEach((n, s) => {
    const planes = width * 2 ** s;
    for (let b = 0; b < n; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const tag = `s${s + 1}b${b + 1}`;
      x = layout.block === "basic"
        ? basicBlock(x, inC, planes, stride, tag, seeds)
        : bottleneck(x, inC, planes, stride, tag, seeds);
      inC = planes * expansion;
    }
  });
  x = apply(tfl.layers.globalAveragePooling2d({ name: "avgpool" }), x);
  x = apply(tfl.layers.dense({ units: numClasses, ...denseInit(inC, seeds), name: "fc" }), x);
  return tfl.model({ inputs: input, outputs: x, name });
}

function conv3(x: Sym, inC: number, outC: number, stride: number, name: string, seeds: SeedStream): Sym {
  return conv(x, inC, {
    filters: outC,
    kernel: 3,
    stride,
    padding: 1,
    bias: false,
    kernelInitializer: kaimingNormalFanOut(seeds),
    name,
  }, seeds);
}

function conv1(x: Sym, inC: number, outC: number, stride: number, name: string, seeds: SeedStream): Sym {
  return conv(x, inC, {
    filters: outC,
    kernel: 1,
    stride,
    bias: false,
    kernelInitializer: kaimingNormalFanOut(seeds),
    name,
  }, seeds);
}

function shortcut(x: Sym, inC: number, outC: number, stride: number, tag: string, seeds: SeedStream): Sym {
  if (stride === 1 && inC === outC) return x;
  const y = conv1(x, inC, outC, stride, `${tag}_down_conv`, seeds);
  return apply(batchNorm(`${tag}_down_bn`), y);
}

function basicBlock(
  x: Sym,
  inC: number,
  planes: number,
  stride: number,
  tag: string,
  seeds: SeedStream,
): Sym {
  let y = conv3(x, inC, planes, stride, `${tag}_conv1`, seeds);
  y = apply(batchNorm(`${tag}_bn1`), y);
  y = apply(relu(`${tag}_relu1`), y);
  y = conv3(y, planes, planes, 1, `${tag}_conv2`, seeds);
  y = apply(batchNorm(`${tag}_bn2`), y);
  const sc = shortcut(x, inC, planes, stride, tag, seeds);
  y = apply(tfl.layers.add({ name: `${tag}_add` }), [y, sc]);
  return apply(relu(`${tag}_out`), y);
}

function bottleneck(
  x: Sym,
  inC: number,
  planes: number,
  stride: number,
  tag: string,
  seeds: SeedStream,
): Sym {
  let y = conv1(x, inC, planes, 1, `${tag}_conv1`, seeds);
  y = apply(batchNorm(`${tag}_bn1`), y);
  y = apply(relu(`${tag}_relu1`), y);
  y = conv3(y, planes, planes, stride, `${tag}_conv2`, seeds);
  y = apply(batchNorm(`${tag}_bn2`), y);
  y = apply(relu(`${tag}_relu2`), y);
  y = conv1(y, planes, planes * 4, 1, `${tag}_conv3`, seeds);
  y = apply(batchNorm(`${tag}_bn3`), y);
  const sc = shortcut(x, inC, planes * 4, stride, tag, seeds);
  y = apply(tfl.layers.add({ name: `${tag}_add` }), [y, sc]);
  return apply(relu(`${tag}_out`), y);
}
