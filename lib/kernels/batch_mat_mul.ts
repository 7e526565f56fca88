/**
 * `BatchMatMul` and `_FusedMatMul` for the wasm backend.
 *
 * - Transposed operands: the backend's kernels handle `transposeA`/`transposeB` 20–50× slower than
 *   plain operands, so they are transposed explicitly first (backend Transpose kernel).
 * - Batched products (attention: q·kᵀ and att·v over batch × heads): the backend runs XNNPACK only
 *   when the right operand has batch 1, and a generic loop (≈3 GFLOP/s) otherwise; here each matrix
 *   of the batch goes through the fast un-batched path instead (≈4× faster for ViT attention).
 *
 * Matrix products are what dense layers and their gradients (dW = xᵀ·dy, dx = dy·Wᵀ) and attention
 * consist of.
 */
import { _FusedMatMul, BatchMatMul, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { free, heapF32, transposeWasm, type WasmBackendLike } from "./kernel_call.ts";

/** Swap the two innermost axes of `x` (rank ≥ 2). */
function swapLast(backend: WasmBackendLike, x: TensorInfo): TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return transposeWasm(backend, x, perm);
}

/** Smallest per-matrix work (multiply-adds) for which one XNNPACK call per batch entry pays off. */
const PER_MATRIX_MIN_MACS = 16384;

/**
 * a·b for batched operands without transposes, one un-batched backend call per batch entry.
 * Returns undefined when the shapes do not call for it (the caller then uses the backend's kernel).
 */
function perBatch(original: KernelConfig, backend: WasmBackendLike, a: TensorInfo, b: TensorInfo) {
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 3 || rb < 3 || a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  const [m, k] = a.shape.slice(-2), n = b.shape[rb - 1];
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  const nb = batchB.reduce((p, d) => p * d, 1), na = batchA.reduce((p, d) => p * d, 1);
  const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  if (nb <= 1 || !(sameBatch || na === 1) || m * k * n < PER_MATRIX_MIN_MACS) return undefined;
  const out = backend.makeOutput([...batchB, m, n], "float32");
  const ai = backend.makeOutput([1, m, k], "float32");
  for (let i = 0; i < nb; i++) {
    const ia = na === 1 ? 0 : i;
    heapF32(backend, ai).set(heapF32(backend, a).subarray(ia * m * k, (ia + 1) * m * k));
    // A fresh tensor every time: the backend caches packed right operands by tensor id.
    const bi = backend.makeOutput([1, k, n], "float32");
    heapF32(backend, bi).set(heapF32(backend, b).subarray(i * k * n, (i + 1) * k * n));
    const oi = original.kernelFunc({
      inputs: { a: ai, b: bi },
      backend: backend as never,
      attrs: { transposeA: false, transposeB: false } as never,
    }) as TensorInfo;
    heapF32(backend, out).set(heapF32(backend, oi), i * m * n);
    free(backend, bi, oi);
  }
  free(backend, ai);
  return out;
}

const batchOf = (t: TensorInfo) => t.shape.slice(0, -2).reduce((p, d) => p * d, 1);

/**
 * a·bᵀ (or aᵀ·bᵀ) computed as (b·aᵀ)ᵀ (or (b·a)ᵀ) when that moves fewer floats through transposes.
 * For a dense layer's input gradient dy·Wᵀ this transposes the small dy and dx instead of the weight
 * matrix (2048×2048 in AlexNet's fc layers). Only for un-batched operands; undefined otherwise.
 */
function viaSwap(
  original: KernelConfig,
  backend: WasmBackendLike,
  a: TensorInfo,
  b: TensorInfo,
  tA: boolean,
) {
  if (batchOf(a) !== 1 || batchOf(b) !== 1 || a.dtype !== "float32" || b.dtype !== "float32") {
    return undefined;
  }
  const ra = a.shape.length, rb = b.shape.length;
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2], k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = b.shape[rb - 2];
  const direct = (tA ? k * m : 0) + 2 * n * k; // transpose a (if needed) and b; pack bᵀ
  const swap = (tA ? 0 : 2 * m * k) + m * n; // transpose a (if needed) and the result; pack aᵀ
  if (swap >= direct) return undefined;
  const right = tA ? a : swapLast(backend, a); // [k, m]
  const prod = original.kernelFunc({
    inputs: { a: b, b: right },
    backend: backend as never,
    attrs: { transposeA: false, transposeB: false } as never,
  }) as TensorInfo; // [n, m]
  const out = swapLast(backend, prod);
  free(backend, prod);
  if (right !== a) free(backend, right);
  return out;
}

/**
 * Wrap a matmul kernel so it never sees transposed operands; with `batched`, batched products run
 * per batch entry (see {@link perBatch}).
 */
function untransposing(original: KernelConfig, batched: boolean): KernelConfig["kernelFunc"] {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const backend = args.backend as unknown as WasmBackendLike;
    if (!attrs.transposeA && !attrs.transposeB) {
      return (batched ? perBatch(original, backend, a, b) : undefined) ?? original.kernelFunc(args);
    }
    if (batched && attrs.transposeB) {
      const swapped = viaSwap(original, backend, a, b, !!attrs.transposeA);
      if (swapped) return swapped;
    }
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
    const out = (batched ? perBatch(original, backend, a2, b2) : undefined) ?? original.kernelFunc({
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
    kernelFunc: untransposing(original, true),
  };
}

/** Replacement for the backend's `_FusedMatMul` (bias + activation), same treatment. */
export function fusedMatMulConfig(original: KernelConfig): KernelConfig {
  return {
    kernelName: _FusedMatMul,
    backendName: "wasm",
    setupFunc: original.setupFunc,
    kernelFunc: untransposing(original, false),
  };
}
