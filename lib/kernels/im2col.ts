/**
 * Patch matrices for convolution gradients, on plain Float32Arrays (the callers pass views of the wasm
 * heap). With R = n·oh·ow output pixels and K = kh·kw·ci filter taps, patch row r=(b,y,x), column
 * k=(a,c,i) holds X[b, y·sh + a − top, x·sw + c − left, i] (0 outside the image).
 *
 * - {@link im2colTransposed} writes that matrix transposed, K×R (dW = Pᵀ·dY is then one GEMM), from a
 *   channel-planar copy of X.
 * - {@link col2imAdd} is the adjoint: it scatter-adds an R×K matrix back into an n×h×w×ci image
 *   (dX = col2im(dY·Wᵀ)).
 */

/** Geometry of one 2-D convolution (NHWC, filter kh×kw×ci×co). */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  ci: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  top: number;
  left: number;
}

/**
 * Write the K×R transposed patch matrix of images b0 … b0+g.n−1 into `out` (length K·R). `src` is
 * channel-planar, [ci, nAll, h, w] (for ci = 1 that is the same as NHWC), so every copied run is a
 * contiguous (or stride-sw) read.
 */
export function im2colTransposed(
  src: Float32Array,
  nAll: number,
  b0: number,
  g: ConvGeometry,
  out: Float32Array,
): void {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const R = n * oh * ow;
  const plane = h * w;
  for (let a = 0; a < kh; a++) {
    for (let c = 0; c < kw; c++) {
      // Output columns whose input column x·sw + c − left is inside [0, w).
      const x0 = Math.max(0, Math.ceil((left - c) / sw));
      const x1 = Math.max(x0, Math.min(ow, Math.floor((w - 1 + left - c) / sw) + 1));
      for (let i = 0; i < ci; i++) {
        const k = (a * kw + c) * ci + i;
        let d = k * R;
        for (let b = 0; b < n; b++) {
          const img = (i * nAll + b0 + b) * plane;
          for (let y = 0; y < oh; y++) {
            const row = y * sh + a - top;
            if (row < 0 || row >= h) {
              out.fill(0, d, d + ow);
              d += ow;
              continue;
            }
            for (let x = 0; x < x0; x++) out[d++] = 0;
            let s = img + row * w + x0 * sw + c - left;
            for (let x = x0; x < x1; x++, s += sw) out[d++] = src[s];
            for (let x = x1; x < ow; x++) out[d++] = 0;
          }
        }
      }
    }
  }
}

/** dx (n×h×w×ci, zeroed by the caller) += col2im(cols), cols being R×K. */
export function col2imAdd(cols: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  if (g.ci < 4) col2imAddFewChannels(cols, g, dx);
  else col2imAddManyChannels(cols, g, dx);
}

/** Channels innermost: contiguous runs of ci floats on both sides. */
function col2imAddManyChannels(cols: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const K = kh * kw * ci;
  let r = 0;
  for (let b = 0; b < n; b++) {
    const img = b * h * w * ci;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++, r++) {
        const src0 = r * K;
        for (let a = 0; a < kh; a++) {
          const row = y * sh + a - top;
          if (row < 0 || row >= h) continue;
          for (let c = 0; c < kw; c++) {
            const col = x * sw + c - left;
            if (col < 0 || col >= w) continue;
            let d = img + (row * w + col) * ci;
            let s = src0 + (a * kw + c) * ci;
            for (let i = 0; i < ci; i++) dx[d++] += cols[s++];
          }
        }
      }
    }
  }
}

/** Output columns innermost (long strided runs), for images with one to three channels. */
function col2imAddFewChannels(cols: Float32Array, g: ConvGeometry, dx: Float32Array): void {
  const { n, h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const K = kh * kw * ci;
  const dStep = sw * ci;
  for (let b = 0; b < n; b++) {
    const img = b * h * w * ci;
    for (let y = 0; y < oh; y++) {
      const r0 = (b * oh + y) * ow;
      for (let a = 0; a < kh; a++) {
        const row = y * sh + a - top;
        if (row < 0 || row >= h) continue;
        for (let c = 0; c < kw; c++) {
          const x0 = Math.max(0, Math.ceil((left - c) / sw));
          const x1 = Math.min(ow, Math.floor((w - 1 + left - c) / sw) + 1);
          for (let i = 0; i < ci; i++) {
            let d = img + (row * w + x0 * sw + c - left) * ci + i;
            let s = (r0 + x0) * K + (a * kw + c) * ci + i;
            for (let x = x0; x < x1; x++, d += dStep, s += K) dx[d] += cols[s];
          }
        }
      }
    }
  }
}
