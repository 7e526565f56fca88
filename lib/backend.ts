/**
 * TensorFlow.js backend selection.
 *
 * Preference order: `tensorflow` (tfjs-node / tfjs-node-gpu, native, when importable) > `wasm`
 * (with the kit's own training kernels from `lib/kernels/`) > `cpu` (pure JS, slow but exact).
 * Force one with `initBackend("cpu")` or the environment variable `BKD_BACKEND=cpu|wasm|tensorflow`.
 * The choice is recorded in every run record through {@link backendInfo}.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";

/** Backends the kit knows how to use. */
export type BackendName = "tensorflow" | "wasm" | "cpu";

/** What was chosen, and why; stored in run records. */
export interface BackendInfo {
  /** The backend tfjs is running on. */
  name: BackendName;
  /** What was asked for ("auto" unless forced). */
  requested: BackendName | "auto";
  /** Kernels the kit registered on top of the backend (wasm only). */
  kitKernels: string[];
  /** Versions of the pieces that decide numerics. */
  versions: { tfjs: string; deno: string; v8: string };
}

let current: BackendInfo | undefined;

/** Kernel registrations for wasm; filled in by `lib/kernels/mod.ts` when it is imported. */
export const wasmKernelRegistrars: { name: string; register: () => void }[] = [];

/**
 * Choose and initialise a backend. Idempotent: a second call with the same request returns the
 * first result. `prefer` defaults to the `BKD_BACKEND` environment variable, then "auto".
 */
export async function initBackend(prefer?: BackendName | "auto"): Promise<BackendInfo> {
  const requested = prefer ?? envBackend() ?? "auto";
  if (current && (requested === "auto" || requested === current.name)) return current;
  const order: BackendName[] = requested === "auto" ? ["tensorflow", "wasm", "cpu"] : [requested];
  for (const name of order) {
    if (await tryBackend(name)) {
      current = {
        name,
        requested,
        kitKernels: name === "wasm" ? wasmKernelRegistrars.map((k) => k.name) : [],
        versions: { tfjs: tf.version_core, deno: Deno.version.deno, v8: Deno.version.v8 },
      };
      return current;
    }
    if (requested !== "auto") {
      throw new Error(
        `backend "${name}" could not be started. Use BKD_BACKEND=wasm (the default fast CPU backend) or cpu.`,
      );
    }
  }
  throw new Error("no TensorFlow.js backend could be started");
}

/** The backend chosen by {@link initBackend}; throws if it has not run yet. */
export function backendInfo(): BackendInfo {
  if (!current) throw new Error("call `await initBackend()` before using the kit");
  return current;
}

function envBackend(): BackendName | "auto" | undefined {
  const v = Deno.env.get("BKD_BACKEND");
  if (!v) return undefined;
  if (v === "auto" || v === "tensorflow" || v === "wasm" || v === "cpu") return v;
  throw new Error(`BKD_BACKEND=${v} is not one of auto, tensorflow, wasm, cpu`);
}

async function tryBackend(name: BackendName): Promise<boolean> {
  try {
    if (name === "tensorflow") {
      // Only present when the user installed @tensorflow/tfjs-node(-gpu); never installed by setup.
      const spec = Deno.env.get("BKD_TFJS_NODE") ?? "@tensorflow/tfjs-node";
      await import(spec);
    }
    if (name === "wasm") { for (const k of wasmKernelRegistrars) k.register(); }
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}
