/**
 * Gradient of `Tile`, as one reshape + sum. tfjs-core's own gradient adds one slice of dy per
 * repetition (a loop of slice + add ops). tfjs-layers' LayerNormalization tiles its mean, variance,
 * gamma and beta to the full input shape, so a ViT on a batch of 64 × 65 tokens ran ~76,000 tiny
 * Slice/Add kernels per training step (5 images/s). Tiling repeats x block-wise, so
 * dy[r0·d0, r1·d1, …] reshaped to [r0, d0, r1, d1, …] and summed over the r axes is dx exactly.
 *
 * Gradients are global in tfjs (not per backend); this is registered with the wasm kernels.
 */
import { type GradConfig, reshape, sum, type Tensor, Tile, type TileAttrs } from "@tensorflow/tfjs-core";

/** Gradient configuration for tfjs-core's registry (replaces the per-repetition loop). */
export const tileGradConfig: GradConfig = {
  kernelName: Tile,
  inputsToSave: ["x"],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs) => {
    const [x] = saved;
    const { reps } = attrs as unknown as TileAttrs;
    const g = dy as Tensor;
    return {
      x: () => {
        const split: number[] = [], repAxes: number[] = [];
        x.shape.forEach((d, i) => {
          split.push(reps[i], d);
          repAxes.push(2 * i);
        });
        return sum(reshape(g, split), repAxes);
      },
    };
  },
};
