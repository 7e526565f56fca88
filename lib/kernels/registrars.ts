/**
 * The list that wasm kernel modules append their registration to. It lives in its own module so that
 * `lib/backend.ts` can both re-export it and import `lib/kernels/mod.ts` without an import cycle.
 */

/** One kernel the kit can register for the wasm backend. `register` is idempotent. */
export interface WasmKernelRegistrar {
  /** tfjs kernel name, e.g. "Conv2DBackpropFilter". */
  name: string;
  /** Register (or re-register) the kernel with tfjs-core's registry. */
  register: () => void;
}

/** Kernel registrations for wasm; filled by `lib/kernels/mod.ts` when it is imported. */
export const wasmKernelRegistrars: WasmKernelRegistrar[] = [];
