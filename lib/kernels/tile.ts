/**
 * `Tile` for the wasm backend. The backend's kernel computes a source index per output element
 * (≈40 ns each); tfjs-layers' LayerNormalization tiles four tensors to the full activation shape on
 * every call, which made Tile a tenth of a ViT training step. This one writes whole output rows:
 * a fill when the source row is one element, otherwise repeated copies of the source row.
 */
import { type KernelConfig, type TensorInfo, Tile, type TileAttrs } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./kernel_call.ts";

/** Kernel function factory: non-numeric tensors go to the backend's own kernel. */
function rowTile(original: KernelConfig): KernelConfig["kernelFunc"] {
  return (args) => {
    const x = (args.inputs as { x: TensorInfo }).x;
    const { reps } = args.attrs as unknown as TileAttrs;
    if (x.dtype === "string" || x.shape.length === 0) return original.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const rank = x.shape.length;
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = backend.makeOutput(outShape, x.dtype);
    const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
    if (dst.length === 0) return out;
    const d = x.shape[rank - 1], rowOut = outShape[rank - 1], r = reps[rank - 1];
    // Row counters over the leading axes of the output, and the matching source row.
    const idx = new Array(rank - 1).fill(0);
    const srcRowStride: number[] = [];
    let stride = d;
    for (let i = rank - 2; i >= 0; i--) {
      srcRowStride[i] = stride;
      stride *= x.shape[i];
    }
    const rows = dst.length / rowOut;
    for (let row = 0; row < rows; row++) {
      let s = 0;
      for (let i = 0; i < rank - 1; i++) s += (idx[i] % x.shape[i]) * srcRowStride[i];
      const o = row * rowOut;
      if (d === 1) dst.fill(src[s], o, o + rowOut);
      else {
        const line = src.subarray(s, s + d);
        for (let k = 0; k < r; k++) dst.set(line, o + k * d);
      }
      for (let i = rank - 2; i >= 0; i--) {
        if (++idx[i] < outShape[i]) break;
        idx[i] = 0;
      }
    }
    return out;
  };
}

/** Registration record (replaces the backend's own Tile, keeping its setup for strings). */
export function tileConfig(original: KernelConfig): KernelConfig {
  return {
    kernelName: Tile,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: rowTile(original),
  };
}
