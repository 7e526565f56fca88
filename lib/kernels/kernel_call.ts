/**
 * Shared plumbing for the kit's wasm kernels: call another kernel already registered for the wasm
 * backend (XNNPACK-backed ones such as Conv2D, Transpose, BatchMatMul), free intermediate results,
 * and view a tensor's bytes on the wasm heap without copying.
 *
 * Kernels never call `tf.*` ops (that would re-enter the engine); they compose kernel functions.
 */
import {
  getKernel,
  type KernelConfig,
  registerKernel,
  type TensorInfo,
  unregisterKernel,
} from "@tensorflow/tfjs-core";

/** The slice of the wasm backend object that the kit's kernels use. */
export interface WasmBackendLike {
  /** Allocates an output tensor on the wasm heap (uninitialised memory). */
  makeOutput(shape: number[], dtype: string): TensorInfo;
  /** Decrements the reference count of a tensor's data and frees it at zero. */
  disposeData(dataId: object): boolean;
  /** Float32/Int32 view of a tensor's heap memory; invalid after the next allocation. */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** Adds one reference to a tensor's data. */
  incRef(dataId: object): void;
}

/** Attribute bag passed to a kernel. */
export type Attrs = Record<string, unknown>;

/** Run the kernel `name` registered for backend `wasm` (the original or an override). */
export function callWasm(
  name: string,
  backend: WasmBackendLike,
  inputs: Record<string, TensorInfo>,
  attrs: Attrs = {},
): TensorInfo {
  const k = getKernel(name, "wasm");
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  return k.kernelFunc({ inputs, backend: backend as never, attrs: attrs as never }) as TensorInfo;
}

/** Free intermediate tensors created inside a kernel. */
export function free(backend: WasmBackendLike, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

/** A Float32Array view of `t` on the wasm heap. Re-fetch after any allocation (the heap may grow). */
export function heapF32(backend: WasmBackendLike, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** Transpose through the backend's own Transpose kernel. */
export function transposeWasm(backend: WasmBackendLike, x: TensorInfo, perm: number[]): TensorInfo {
  return callWasm("Transpose", backend, { x }, { perm });
}

/** Same data, new shape: shares the buffer (one more reference), so free it like any other result. */
export function reshapeInfo(backend: WasmBackendLike, x: TensorInfo, shape: number[]): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * Register `config` for wasm, replacing a previous registration silently. Returns the config that was
 * registered before (undefined if none), so an override can delegate to the backend's own kernel.
 */
export function replaceWasmKernel(config: KernelConfig): KernelConfig | undefined {
  const before = getKernel(config.kernelName, "wasm");
  if (before) unregisterKernel(config.kernelName, "wasm");
  registerKernel(config);
  return before;
}
