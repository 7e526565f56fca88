/**
 * `BatchMatMul` and `_FusedMatMul` for the wasm backend with `transposeA`/`transposeB`: the backend's
 * own kernels handle transposed operands 20–50× slower than plain ones, so transposed operands are
 * first transposed explicitly (backend Transpose kernel), then the backend's kernel runs untransposed.
 * Matrix products are what dense layers and their gradients (dW = xᵀ·dy, dx = dy·Wᵀ) and attention
 * (q·kᵀ) consist of.
 */
import { _FusedMatMul, BatchMatMul, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { free, transposeWasm, type WasmBackendLike } from "./kernel_call.ts";

/** Swap the two innermost axes of `x` (rank ≥ 2). */
function swapLast(backend: WasmBackendLike, x: TensorInfo): TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return transposeWasm(backend, x, perm);
}

/** Wrap a matmul kernel so it never sees transposed operands (vectors are passed through as-is). */
function untransposing(original: KernelConfig): KernelConfig["kernelFunc"] {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    // A matrix with one row/column is a vector: transposing it only relabels the shape.
    const temps: TensorInfo[] = [];
    let a2 = a, b2 = b;
    if (attrs.transposeA) {
      a2 = swapLast(backend, a);
      temps.push(a2);
    }
    if (attrs.transposeB) {
      b2 = swapLast(backend, b);
      temps.push(b2);
    }
    const out = original.kernelFunc({
      ...args,
      inputs: { ...args.inputs, a: a2, b: b2 },
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
    free(backend, ...temps);
    return out;
  };
}

/** Replacement for the backend's `BatchMatMul`, delegating to `original` after transposing. */
export function batchMatMulConfig(original: KernelConfig): KernelConfig {
  return {
    kernelName: BatchMatMul,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: untransposing(original),
  };
}

/** Replacement for the backend's `_FusedMatMul` (bias + activation), same treatment. */
export function fusedMatMulConfig(original: KernelConfig): KernelConfig {
  return {
    kernelName: _FusedMatMul,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: untransposing(original),
  };
}
