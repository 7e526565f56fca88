/**
 * Small layer helpers that reproduce PyTorch semantics in tfjs-layers (NHWC):
 * - {@link conv}: explicit symmetric zero padding then a `valid` convolution, so output sizes and padding
 *   positions equal `torch.nn.Conv2d(padding=p)` even with stride 2 (tfjs `same` pads asymmetrically);
 * - {@link batchNorm}: PyTorch defaults (momentum 0.1 ⇒ tfjs momentum 0.9, ε = 1e-5, γ = 1, β = 0);
 * - {@link apply}: typed functional-API application of a layer to one symbolic tensor.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { convInit, type Initializer, type SeedStream } from "./init.ts";

/** A symbolic tensor in a functional tfjs-layers graph. */
export type Sym = tfl.SymbolicTensor;

/** Apply `layer` to one symbolic tensor and return one symbolic tensor. */
export function apply(layer: tfl.layers.Layer, x: Sym | Sym[]): Sym {
  return layer.apply(x) as Sym;
}

/** Options for {@link conv}. */
export interface ConvOptions {
  /** Output channels. */
  filters: number;
  /** Square kernel size. */
  kernel: number;
  /** Stride (default 1). */
  stride?: number;
  /** Symmetric zero padding on each side (default 0). */
  padding?: number;
  /** Add a bias (default true). */
  bias?: boolean;
  /** Kernel initialiser; default PyTorch-uniform from {@link convInit}. */
  kernelInitializer?: Initializer;
  /** Layer name (the padding layer gets `<name>_pad`). */
  name: string;
}

/** `Conv2d(inChannels → filters, kernel, stride, padding)` with PyTorch padding semantics; no activation. */
export function conv(x: Sym, inChannels: number, o: ConvOptions, seeds: SeedStream): Sym {
  const p = o.padding ?? 0;
  if (p > 0) x = apply(tfl.layers.zeroPadding2d({ padding: p, name: `${o.name}_pad` }), x);
  const init = convInit(inChannels, o.kernel, seeds);
  const useBias = o.bias ?? true;
  return apply(
    tfl.layers.conv2d({
      filters: o.filters,
      kernelSize: o.kernel,
      strides: o.stride ?? 1,
      padding: "valid",
      useBias,
      kernelInitializer: o.kernelInitializer ?? init.kernelInitializer,
      biasInitializer: useBias ? init.biasInitializer : undefined,
      name: o.name,
    }),
    x,
  );
}

/** Batch normalisation over the last (channel/feature) axis with PyTorch defaults. */
export function batchNorm(name: string): tfl.layers.Layer {
  return tfl.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name });
}

/** ReLU activation layer. */
export function relu(name: string): tfl.layers.Layer {
  return tfl.layers.activation({ activation: "relu", name });
}

/** 2×2 max pooling, stride 2 (PyTorch `MaxPool2d(2)`, floor mode). */
export function maxPool2(name: string): tfl.layers.Layer {
  return tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: "valid", name });
}
