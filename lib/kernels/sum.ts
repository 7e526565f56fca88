/**
 * `Sum` for the wasm backend when the reduced axes are the leading ones (bias gradients: dY summed over
 * batch, rows and columns, leaving channels). The backend's kernel first transposes the reduced axes
 * to the end (a full copy) and then reduces; this sums rows straight into per-column accumulators.
 * Every other case (reducing trailing axes, int tensors, few columns) goes to the backend's kernel.
 */
import { type KernelConfig, Sum, type TensorInfo, util } from "@tensorflow/tfjs-core";
import { heapF32, type WasmBackendLike } from "./kernel_call.ts";

/** Kernel function factory: the returned kernel delegates to `original` outside the fast case. */
function leadingAxesSum(original: KernelConfig): KernelConfig["kernelFunc"] {
  return (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const k = axes.length;
    const leading = k > 0 && k < rank && axes.every((a, i) => a === i);
    const inner = util.sizeFromShape(x.shape.slice(k));
    if (x.dtype !== "float32" || !leading || inner < 4) return original.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const rows = util.sizeFromShape(x.shape.slice(0, k));
    const outShape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
    const out = backend.makeOutput(outShape, "float32");
    const src = heapF32(backend, x), dst = heapF32(backend, out);
    const acc = new Float64Array(inner);
    for (let r = 0, p = 0; r < rows; r++) {
      for (let j = 0; j < inner; j++, p++) acc[j] += src[p];
    }
    dst.set(acc);
    return out;
  };
}

/** Registration record (replaces the backend's own Sum, keeping its setup for the delegated cases). */
export function sumConfig(original: KernelConfig): KernelConfig {
  return {
    kernelName: Sum,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: leadingAxesSum(original),
  };
}
