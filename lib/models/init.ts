/**
 * Seeded weight initialisers shared by every network builder.
 *
 * Determinism: a builder receives one {@link SeedStream} made from the model seed and draws one 32-bit seed
 * per initialiser, in construction order, from `lib/util/rng.ts`. Two builds of the same spec with the same
 * seed therefore get bit-identical weights; tfjs' own seeded random ops turn each seed into values.
 *
 * Default scheme ("PyTorch default"): kernels of conv and dense layers are Kaiming-uniform with a = √5, i.e.
 * U(−1/√fanIn, 1/√fanIn), and biases are U(−1/√fanIn, 1/√fanIn), matching `torch.nn.Linear`/`Conv2d`
 * defaults. Batch-norm and layer-norm start at γ = 1, β = 0 (moving mean 0, variance 1).
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { Rng } from "../util/rng.ts";

/** A tfjs-layers initializer (the type tfjs does not export by name). */
export type Initializer = ReturnType<typeof tfl.initializers.zeros>;

/** A stream of per-layer integer seeds derived from one model seed. */
export class SeedStream {
  #rng: Rng;

  /** Start the stream for model seed `seed`. */
  constructor(seed: number) {
    this.#rng = new Rng(seed);
  }

  /** The next per-initialiser seed. */
  next(): number {
    return this.#rng.nextU32();
  }
}

/** PyTorch-default kernel init: U(−1/√fanIn, 1/√fanIn) (fanIn computed by tfjs from the kernel shape). */
export function torchKernel(seeds: SeedStream): Initializer {
  return tfl.initializers.varianceScaling({
    scale: 1 / 3,
    mode: "fanIn",
    distribution: "uniform",
    seed: seeds.next(),
  });
}

/** PyTorch-default bias init: U(−1/√fanIn, 1/√fanIn) for a layer whose kernel has fan-in `fanIn`. */
export function torchBias(fanIn: number, seeds: SeedStream): Initializer {
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed: seeds.next() });
}

/**
 * Kaiming-normal, fan-out, gain √2 (torchvision's ResNet conv init). tfjs draws from a normal truncated at
 * two standard deviations with std √(2/fanOut).
 */
export function kaimingNormalFanOut(seeds: SeedStream): Initializer {
  return tfl.initializers.varianceScaling({
    scale: 2,
    mode: "fanOut",
    distribution: "normal",
    seed: seeds.next(),
  });
}

/** Normal N(0, std²) truncated at 2σ (ViT position embeddings and class token). */
export function truncNormal(std: number, seeds: SeedStream): Initializer {
  return tfl.initializers.truncatedNormal({ mean: 0, stddev: std, seed: seeds.next() });
}

/** Keyword arguments for a PyTorch-default dense layer with `fanIn` inputs. */
export function denseInit(fanIn: number, seeds: SeedStream): {
  kernelInitializer: Initializer;
  biasInitializer: Initializer;
} {
  return { kernelInitializer: torchKernel(seeds), biasInitializer: torchBias(fanIn, seeds) };
}

/** Keyword arguments for a PyTorch-default conv layer (`inChannels` × `kernel`² fan-in). */
export function convInit(inChannels: number, kernel: number, seeds: SeedStream): {
  kernelInitializer: Initializer;
  biasInitializer: Initializer;
} {
  return denseInit(inChannels * kernel * kernel, seeds);
}
