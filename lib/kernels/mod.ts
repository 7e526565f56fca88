/**
 * The kit's wasm kernels. Importing this module appends one registrar per kernel to
 * `wasmKernelRegistrars` (lib/backend.ts); `initBackend` runs them before switching to wasm.
 * Registering is idempotent. Overrides keep the replaced kernel's `setupFunc`, and delegate to the
 * replaced kernel where they do not cover a case.
 */
import { getKernel, type KernelConfig, registerGradient } from "@tensorflow/tfjs-core";
import { wasmKernelRegistrars } from "./registrars.ts";
import { batchMatMulConfig, fusedMatMulConfig } from "./batch_mat_mul.ts";
import { conv2dBackpropFilterConfig } from "./conv2d_backprop_filter.ts";
import { conv2dBackpropInputConfig, setConv2dBackpropInputFallback } from "./conv2d_backprop_input.ts";
import { replaceWasmKernel } from "./kernel_call.ts";
import { maxPoolGradConfig } from "./max_pool_grad.ts";
import { sumConfig } from "./sum.ts";
import { tileConfig } from "./tile.ts";
import { tileGradConfig } from "./tile_grad.ts";
import { unsortedSegmentSumConfig } from "./unsorted_segment_sum.ts";

/** Kernel configs registered by the kit, by name (filled when registered). */
const ours = new Map<string, KernelConfig>();

/** Register `make(original)` for wasm once; later calls are no-ops while ours is still registered. */
function once(name: string, make: (original: KernelConfig | undefined) => KernelConfig): () => void {
  return () => {
    const current = getKernel(name, "wasm");
    const mine = ours.get(name);
    if (mine && current && current.kernelFunc === mine.kernelFunc) return;
    const config = make(current);
    replaceWasmKernel(config);
    ours.set(name, config);
  };
}

function required(name: string, k: KernelConfig | undefined): KernelConfig {
  if (!k) throw new Error(`the wasm backend has no ${name} kernel to build on`);
  return k;
}

/** Names of the kernels the kit registers for wasm, in registration order. */
export const kitWasmKernels: string[] = [];

function add(name: string, make: (original: KernelConfig | undefined) => KernelConfig): void {
  kitWasmKernels.push(name);
  wasmKernelRegistrars.push({ name, register: once(name, make) });
}

add("Conv2DBackpropFilter", () => conv2dBackpropFilterConfig);
add("Conv2DBackpropInput", (orig) => {
  setConv2dBackpropInputFallback(orig);
  return conv2dBackpropInputConfig(orig);
});
add("BatchMatMul", (orig) => batchMatMulConfig(required("BatchMatMul", orig)));
add("_FusedMatMul", (orig) => fusedMatMulConfig(required("_FusedMatMul", orig)));
add("MaxPoolGrad", (orig) => maxPoolGradConfig(orig));
add("Sum", (orig) => sumConfig(required("Sum", orig)));
add("Tile", (orig) => tileConfig(required("Tile", orig)));
add("UnsortedSegmentSum", () => unsortedSegmentSumConfig);

// A gradient, not a kernel: registered with them because the kernels' users train on wasm.
kitWasmKernels.push("Tile (gradient)");
wasmKernelRegistrars.push({ name: "Tile (gradient)", register: () => registerGradient(tileGradConfig) });
