/**
 * TensorFlow.js backend selection.
 *
 * Preference order: `tensorflow` (tfjs-node-gpu / tfjs-node, native, when importable) > `wasm`
 * (with the kit's own training kernels from `lib/kernels/`) > `cpu` (pure JS, slow but exact).
 * Force one with `initBackend("cpu")` or the environment variable `BKD_BACKEND=cpu|wasm|tensorflow`.
 * The choice is recorded in every run record through {@link backendInfo}.
 *
 * Native TensorFlow (optional, needs internet once): on a machine with internet access run
 *
 *     npm install --no-save @tensorflow/tfjs-node@4.22.0       # or @tensorflow/tfjs-node-gpu@4.22.0
 *
 * in the repository (its install script downloads libtensorflow; the GPU build wants CUDA 11.2 +
 * cuDNN 8.1), add it to package.json `dependencies` if Deno reports "not a dependency", and run Deno
 * with `-A` (or at least `--allow-ffi`). `BKD_TFJS_NODE=<module>` names a different module to try.
 * Without it the kit falls back to wasm silently.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
// tfjs-core's node bundle registers no gradient functions; the tfjs-layers bundle registers them all.
import "@tensorflow/tfjs-layers";
import util from "node:util";
import { wasmKernelRegistrars } from "./kernels/registrars.ts";
import "./kernels/mod.ts";

export { wasmKernelRegistrars };

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
  /** For wasm: which binary runs (SIMD build? threaded build?). */
  wasm?: { simd: boolean; threads: boolean };
  /** For tensorflow: the module that provided it. */
  nativeModule?: string;
}

let current: BackendInfo | undefined;

/**
 * Choose and initialise a backend. Idempotent: a second call with the same request returns the
 * first result. `prefer` defaults to the `BKD_BACKEND` environment variable, then "auto".
 */
export async function initBackend(prefer?: BackendName | "auto"): Promise<BackendInfo> {
  const requested = prefer ?? envBackend() ?? "auto";
  if (current && (requested === "auto" || requested === current.name)) return current;
  const order: BackendName[] = requested === "auto" ? ["tensorflow", "wasm", "cpu"] : [requested];
  for (const name of order) {
    const native = name === "tensorflow" ? await importNative() : undefined;
    if ((name !== "tensorflow" || native) && await tryBackend(name)) {
      current = {
        name,
        requested,
        kitKernels: name === "wasm" ? wasmKernelRegistrars.map((k) => k.name) : [],
        versions: { tfjs: tf.version_core, deno: Deno.version.deno, v8: Deno.version.v8 },
      };
      if (name === "wasm") {
        current.wasm = {
          simd: await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT") as boolean,
          threads: await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT") as boolean,
        };
      }
      if (native) current.nativeModule = native;
      return current;
    }
    if (requested !== "auto") {
      const hint = name === "tensorflow"
        ? " @tensorflow/tfjs-node is not installed (see lib/backend.ts for how to install it)."
        : "";
      throw new Error(
        `backend "${name}" could not be started.${hint} Use BKD_BACKEND=wasm (the default fast CPU backend) or cpu.`,
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

/**
 * Try to import native TensorFlow bindings; returns the module name that loaded, or undefined.
 * Deno's `node:util` lacks `isNullOrUndefined`, which tfjs-node still calls: add it first.
 */
async function importNative(): Promise<string | undefined> {
  const u = util as unknown as Record<string, unknown>;
  if (typeof u.isNullOrUndefined !== "function") u.isNullOrUndefined = (v: unknown) => v == null;
  const env = Deno.env.get("BKD_TFJS_NODE");
  const candidates = env ? [env] : ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];
  for (const spec of candidates) {
    try {
      await import(spec);
      if (tf.findBackendFactory("tensorflow")) return spec;
    } catch {
      // not installed (the normal case offline): try the next one, then fall back to wasm
    }
  }
  return undefined;
}

async function tryBackend(name: BackendName): Promise<boolean> {
  try {
    if (name === "wasm") { for (const k of wasmKernelRegistrars) k.register(); }
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    // The cpu backend prints an "install tfjs-node" banner on first use under Node/Deno; lib/ never prints.
    if (ok && name === "cpu") (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}
