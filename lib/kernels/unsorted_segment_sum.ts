/**
 * `UnsortedSegmentSum` for the wasm backend (missing there; it is the gradient of `gather`, e.g. for
 * embedding tables). out[s, …] = Σ_{j: ids[j] = s} x[j, …]; ids outside [0, numSegments) are dropped.
 * `segmentIds` indexes the leading axes of `x` (any rank up to x's). Plain JS on the wasm heap.
 */
import { type KernelConfig, type TensorInfo, UnsortedSegmentSum } from "@tensorflow/tfjs-core";
import { heapF32, type WasmBackendLike } from "./kernel_call.ts";

/** Kernel function: inputs {x, segmentIds (int32)}, attrs {numSegments}. */
export function unsortedSegmentSumWasm(
  args: {
    inputs: { x: TensorInfo; segmentIds: TensorInfo };
    backend: unknown;
    attrs: { numSegments: number };
  },
): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, segmentIds } = args.inputs;
  const { numSegments } = args.attrs;
  const lead = segmentIds.shape.length;
  const rows = segmentIds.shape.reduce((p, d) => p * d, 1);
  const inner = x.shape.slice(lead).reduce((p, d) => p * d, 1);
  const dtype = x.dtype === "int32" ? "int32" : "float32";
  const out = backend.makeOutput([numSegments, ...x.shape.slice(lead)], dtype);
  const dst = dtype === "int32" ? backend.typedArrayFromHeap(out) as Int32Array : heapF32(backend, out);
  const src = dtype === "int32" ? backend.typedArrayFromHeap(x) as Int32Array : heapF32(backend, x);
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  dst.fill(0);
  for (let j = 0; j < rows; j++) {
    const s = ids[j];
    if (s < 0 || s >= numSegments) continue;
    const d0 = s * inner, s0 = j * inner;
    for (let k = 0; k < inner; k++) dst[d0 + k] += src[s0 + k];
  }
  return out;
}

/** Registration record for tfjs-core's kernel registry. */
export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: "wasm",
  kernelFunc: unsortedSegmentSumWasm as unknown as KernelConfig["kernelFunc"],
};
