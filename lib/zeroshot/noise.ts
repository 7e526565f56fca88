/**
 * Noise distributions for ZSDB3KD's initial pseudo samples. All draw NHWC images in [0,1].
 *
 * - `reference` (the paper's code): s ~ U[0,1) per image, n = (U[0,1)^{H×W×C} + 0.2)·s, then
 *   n = clip(n + N(0, I)·s′, 0, 1) with s′ ~ U[0,1).
 * - `smooth`: low-frequency noise — a g×g grid of U[0,1) values (g from 2 to 7) upsampled bilinearly,
 *   then a random contrast curve clip((u − τ)·κ, 0, 1) (per channel for colour images).
 * - `strokes`: 1–4 random quadratic Bézier strokes (width 0.8–2.4 px, intensity 0.6–1) on a dark
 *   background (a random colour per stroke and background for colour images).
 *
 * `reference` alone reaches few classes of a real teacher (LeNet-5 MNIST: mostly 8, never 4, 6 or 9),
 * so the initialisation searches the other families too (see `noise_init.ts`).
 */
import { fillStandardNormal } from "../db3/normal.ts";
import type { Rng } from "../util/rng.ts";

/** A noise family name. */
export type NoiseFamily = "reference" | "smooth" | "strokes";

/** All families, the reference first. */
export const NOISE_FAMILIES: readonly NoiseFamily[] = ["reference", "smooth", "strokes"];

/** Write `n` images of `shape` [h, w, c] drawn from `family` into `out` (n·h·w·c floats). */
export function drawNoise(
  family: NoiseFamily,
  rng: Rng,
  n: number,
  shape: number[],
  out: Float32Array = new Float32Array(n * shape.reduce((a, b) => a * b, 1)),
): Float32Array {
  const dim = shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    const img = out.subarray(i * dim, (i + 1) * dim);
    if (family === "reference") referenceNoise(rng, img);
    else if (family === "smooth") smoothNoise(rng, img, shape);
    else strokesNoise(rng, img, shape);
  }
  return out;
}

function referenceNoise(rng: Rng, img: Float32Array) {
  const s = rng.uniform();
  const s2 = rng.uniform();
  fillStandardNormal(rng, img);
  for (let k = 0; k < img.length; k++) {
    const v = (rng.uniform() + 0.2) * s + img[k] * s2;
    img[k] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

function smoothNoise(rng: Rng, img: Float32Array, shape: number[]) {
  const [h, w, c] = shape.length === 3 ? shape : [shape[0], 1, 1];
  const g = 2 + rng.int(6);
  for (let ch = 0; ch < c; ch++) {
    const grid = Float64Array.from({ length: g * g }, () => rng.uniform());
    const tau = 0.3 + 0.5 * rng.uniform();
    const kappa = 1 + 5 * rng.uniform();
    for (let yy = 0; yy < h; yy++) {
      const gy = (yy / Math.max(1, h - 1)) * (g - 1);
      const y0 = Math.min(g - 2, Math.floor(gy)), fy = gy - y0;
      for (let xx = 0; xx < w; xx++) {
        const gx = (xx / Math.max(1, w - 1)) * (g - 1);
        const x0 = Math.min(g - 2, Math.floor(gx)), fx = gx - x0;
        const a = grid[y0 * g + x0], b = grid[y0 * g + x0 + 1];
        const d = grid[(y0 + 1) * g + x0], e = grid[(y0 + 1) * g + x0 + 1];
        const u = (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
        const v = (u - tau) * kappa;
        img[(yy * w + xx) * c + ch] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
}

function strokesNoise(rng: Rng, img: Float32Array, shape: number[]) {
  const [h, w, c] = shape.length === 3 ? shape : [shape[0], 1, 1];
  const bg = Array.from({ length: c }, () => (c === 1 ? 0 : 0.5 * rng.uniform()));
  for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) img[p * c + ch] = bg[ch];
  const strokes = 1 + rng.int(4);
  const m = Math.max(1, Math.round(Math.min(h, w) * 0.12));
  const pt = () => [m + rng.uniform() * (w - 2 * m), m + rng.uniform() * (h - 2 * m)];
  for (let s = 0; s < strokes; s++) {
    const [p0, p1, p2] = [pt(), pt(), pt()];
    const r = 0.8 + 1.6 * rng.uniform();
    const ink = Array.from({ length: c }, () => (c === 1 ? 0.6 + 0.4 * rng.uniform() : rng.uniform()));
    const steps = 48;
    for (let k = 0; k <= steps; k++) {
      const t = k / steps, a = (1 - t) * (1 - t), b = 2 * t * (1 - t), d = t * t;
      const cx = a * p0[0] + b * p1[0] + d * p2[0];
      const cy = a * p0[1] + b * p1[1] + d * p2[1];
      const x0 = Math.max(0, Math.floor(cx - r - 1)), x1 = Math.min(w - 1, Math.ceil(cx + r + 1));
      const y0 = Math.max(0, Math.floor(cy - r - 1)), y1 = Math.min(h - 1, Math.ceil(cy + r + 1));
      for (let yy = y0; yy <= y1; yy++) {
        for (let xx = x0; xx <= x1; xx++) {
          const cover = Math.min(1, Math.max(0, r + 0.5 - Math.hypot(xx - cx, yy - cy)));
          if (cover <= 0) continue;
          for (let ch = 0; ch < c; ch++) {
            const o = (yy * w + xx) * c + ch;
            img[o] = Math.max(img[o], bg[ch] + cover * (ink[ch] - bg[ch]));
          }
        }
      }
    }
  }
}
