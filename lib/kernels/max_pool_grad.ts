/**
 * `MaxPoolGrad` for the wasm backend. The backend's own kernel is a direct loop that costs more than
 * the forward convolutions of a LeNet; this one is one pass in JS over the wasm heap: for every
 * output pixel it finds, per channel, the first maximum of the window in x (row-major order, strictly
 * greater — the cpu backend's rule) and adds dy there. Overlapping windows accumulate. The 2×2
 * stride-2 pool has its own branch-free loop.
 */
import { backend_util, type KernelConfig, MaxPoolGrad, type TensorInfo } from "@tensorflow/tfjs-core";
import { heapF32, type WasmBackendLike } from "./kernel_call.ts";

/** Attributes of `MaxPoolGrad` (same as the forward pool). */
interface PoolAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: "valid" | "same" | number | backend_util.ExplicitPadding;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** Kernel function: inputs {dy, input, output}, attrs {filterSize, strides, pad, dimRoundingMode}. */
export function maxPoolGradWasm(
  args: {
    inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
    backend: unknown;
    attrs: PoolAttrs;
  },
): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, input } = args.inputs;
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  const out = backend.makeOutput(input.shape, "float32");
  const dx = heapF32(backend, out), x = heapF32(backend, input), g = heapF32(backend, dy);
  dx.fill(0);
  if (fh === 2 && fw === 2 && sh === 2 && sw === 2 && top === 0 && left === 0 && oh * 2 <= h && ow * 2 <= w) {
    pool2x2(x, heapF32(backend, args.inputs.output), g, dx, n, h, w, c, oh, ow);
    return out;
  }
  const best = new Float32Array(c), where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    const xb = b * h * w * c;
    for (let oy = 0; oy < oh; oy++) {
      const r0 = Math.max(0, oy * sh - top), r1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < ow; ox++) {
        const c0 = Math.max(0, ox * sw - left), c1 = Math.min(w, ox * sw - left + fw);
        const q = ((b * oh + oy) * ow + ox) * c;
        if (r1 <= r0 || c1 <= c0) continue;
        // The window's first pixel seeds the running maximum (NaN never wins, as on cpu).
        const p0 = xb + (r0 * w + c0) * c;
        for (let k = 0; k < c; k++) {
          const v = x[p0 + k];
          best[k] = v === v ? v : -Infinity;
          where[k] = v === v ? p0 + k : -1;
        }
        for (let r = r0; r < r1; r++) {
          for (let col = r === r0 ? c0 + 1 : c0; col < c1; col++) {
            const p = xb + (r * w + col) * c;
            for (let k = 0; k < c; k++) {
              const v = x[p + k];
              if (v > best[k]) {
                best[k] = v;
                where[k] = p + k;
              }
            }
          }
        }
        for (let k = 0; k < c; k++) if (where[k] >= 0) dx[where[k]] += g[q + k];
      }
    }
  }
  return out;
}

/** Index of the lowest set bit of a 3-bit mask, 3 when none is set (then the 4th pixel is the max). */
const FIRST_HIT = new Int32Array([3, 0, 1, 0, 2, 0, 1, 0]);

/**
 * The common 2×2 stride-2 unpadded pool: windows do not overlap. The forward output y (an exact copy
 * of each window's maximum) picks the first maximal position by table lookup instead of branches —
 * which position wins is random, so branches would mispredict half the time. A window whose maximum
 * is NaN passes no gradient.
 */
function pool2x2(
  x: Float32Array,
  y: Float32Array,
  g: Float32Array,
  dx: Float32Array,
  n: number,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
): void {
  const down = w * c;
  const offset = new Int32Array([0, c, down, down + c]);
  let q = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      let p = (b * h + 2 * oy) * down;
      for (let ox = 0; ox < ow; ox++, p += 2 * c) {
        for (let k = 0; k < c; k++, q++) {
          const i0 = p + k, m = y[q];
          const hits = +(x[i0] === m) | (+(x[i0 + c] === m) << 1) | (+(x[i0 + down] === m) << 2);
          const at = i0 + offset[FIRST_HIT[hits]];
          if (x[at] === m) dx[at] = g[q];
        }
      }
    }
  }
}

/** Registration record (replaces the backend's own MaxPoolGrad). */
export function maxPoolGradConfig(original: KernelConfig | undefined): KernelConfig {
  return {
    kernelName: MaxPoolGrad,
    backendName: "wasm",
    setupFunc: original?.setupFunc,
    kernelFunc: maxPoolGradWasm as unknown as KernelConfig["kernelFunc"],
  };
}
