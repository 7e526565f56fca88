/**
 * `MaxPoolGrad` for the wasm backend. The backend's own kernel is a direct loop that costs more than
 * the forward convolutions of a LeNet; this one is one pass in JS over the wasm heap: for every
 * output pixel it finds, per channel, the first maximum of the window in x (row-major order, strictly
 * greater — the cpu backend's rule) and adds dy there. Overlapping windows accumulate.
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
  const best = new Float32Array(c), where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    const xb = b * h * w * c;
    for (let oy = 0; oy < oh; oy++) {
      const r0 = Math.max(0, oy * sh - top), r1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < ow; ox++) {
        const c0 = Math.max(0, ox * sw - left), c1 = Math.min(w, ox * sw - left + fw);
        best.fill(-Infinity);
        where.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let col = c0; col < c1; col++) {
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
        const q = ((b * oh + oy) * ow + ox) * c;
        for (let k = 0; k < c; k++) if (where[k] >= 0) dx[where[k]] += g[q + k];
      }
    }
  }
  return out;
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
