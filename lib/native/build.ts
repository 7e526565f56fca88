/**
 * Compile `forward.cpp` (the native inference engine), or another engine source of this folder
 * (`BuildOptions.source`, e.g. `lenet_grads.cpp`), into a shared library at first use.
 *
 * - Compiler: `BKD_CXX` if set (only that one), else `g++`, else `c++`.
 * - Flags: {@link NATIVE_FLAGS} (`-O3 -march=native`, no `-ffast-math`).
 * - Output: `<repo>/data/cache/native/<source stem>-<hash>.so` (or `BKD_NATIVE_CACHE`), where the hash covers
 *   the source text, flags, the compiler's `--version` text, the CPU model name and feature flags
 *   (/proc/cpuinfo; Deno lets only `-A` read it) and what `-march=native` expands to for the compiler
 *   (native code is only valid on the CPU it was built for). The library is written to a
 *   temporary file and renamed into place, so concurrent builds in two processes are harmless.
 * - `BKD_NATIVE=0` disables the engine.
 *
 * {@link buildNative} never throws for "unavailable" (no compiler, compile error, missing permission):
 * it returns `{ok: false, reason}` so callers fall back to the wasm worker pool.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../util/paths.ts";

/** Compiler flags (besides `-o`). */
export const NATIVE_FLAGS: readonly string[] = [
  "-O3",
  "-march=native",
  "-std=c++17",
  "-shared",
  "-fPIC",
  "-pthread",
];

/** A built engine library. */
export interface NativeBuild {
  ok: true;
  /** Path of the shared library. */
  path: string;
  /** Compiler command used (e.g. "g++"). */
  compiler: string;
  /** First line of the compiler's `--version`. */
  compilerVersion: string;
  flags: string[];
  /** CPU model name from /proc/cpuinfo ("unknown" if unreadable). */
  cpu: string;
  /** True if this call compiled it (false: found in the cache). */
  compiled: boolean;
}

/** Why the engine cannot be used. */
export interface NativeUnavailable {
  ok: false;
  reason: string;
}

/** Options for {@link buildNative}. */
export interface BuildOptions {
  /** Cache folder (default `BKD_NATIVE_CACHE` or `<repo>/data/cache/native`). */
  cacheDir?: string;
  /** Compiler to use instead of `BKD_CXX` / `g++` / `c++`. */
  compiler?: string;
  /** Source file in lib/native/ to build (default `forward.cpp`); the library is named after it. */
  source?: string;
}

/** Read an environment variable; undefined when unset or not permitted. */
export function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** True unless `BKD_NATIVE=0` (or `false`/`off`/`no`). */
export function nativeEnabled(): boolean {
  const v = envVar("BKD_NATIVE")?.trim().toLowerCase();
  return !(v === "0" || v === "false" || v === "off" || v === "no");
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** True for Deno's "permission not granted" errors. */
function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable;
}

/** Run `cmd args`, returning exit status and text output, or why it could not start. */
async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string } | string> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  } catch (e) {
    return isPermissionError(e) ? `no permission to run ${cmd} (needs --allow-run)` : message(e);
  }
}

/** CPU model name and feature flags from /proc/cpuinfo (first processor). */
async function cpuInfo(): Promise<{ model: string; flags: string }> {
  try {
    const text = await Deno.readTextFile("/proc/cpuinfo");
    const field = (k: string) => text.match(new RegExp(`^${k}\\s*:\\s*(.*)$`, "m"))?.[1]?.trim() ?? "";
    return { model: field("model name") || "unknown", flags: field("flags") || field("Features") };
  } catch {
    return { model: "unknown", flags: "" };
  }
}

/** The first compiler candidate that answers `--version`. */
async function findCompiler(explicit?: string): Promise<{ cmd: string; version: string } | string> {
  const forced = explicit ?? envVar("BKD_CXX");
  const candidates = forced ? [forced] : ["g++", "c++"];
  for (const cmd of candidates) {
    const r = await run(cmd, ["--version"]);
    if (typeof r === "string" && r.startsWith("no permission")) return r;
    if (typeof r !== "string" && r.ok) return { cmd, version: r.out.trim() };
  }
  return forced
    ? `compiler ${forced}${explicit ? "" : " (from BKD_CXX)"} does not run`
    : "no C++ compiler found (tried g++, c++; set BKD_CXX to choose one)";
}

/**
 * What `-march=native` expands to for this compiler on this machine (the cc1 target options from
 * `-v`), so the cache key follows the instruction set even where /proc/cpuinfo is unreadable.
 */
async function nativeTarget(cmd: string): Promise<string> {
  const r = await run(cmd, ["-march=native", "-E", "-v", "-x", "c++", "/dev/null", "-o", "/dev/null"]);
  if (typeof r === "string") return "";
  const line = r.err.split("\n").find((l) => / -march=(?!native)/.test(l)) ?? "";
  return line.split(" ").filter((w) => w.startsWith("-m")).join(" ");
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

const cache = new Map<string, Promise<NativeBuild | NativeUnavailable>>();

/**
 * The engine library, compiled if needed (once per process and options). Resolves to
 * `{ok: false, reason}` when the engine is disabled or cannot be built.
 */
export function buildNative(opts: BuildOptions = {}): Promise<NativeBuild | NativeUnavailable> {
  if (!nativeEnabled()) return Promise.resolve({ ok: false, reason: "disabled by BKD_NATIVE=0" });
  const key = JSON.stringify([
    opts.cacheDir ?? "",
    opts.compiler ?? "",
    envVar("BKD_CXX") ?? "",
    opts.source ?? "",
  ]);
  let p = cache.get(key);
  if (!p) {
    p = build(opts).catch((e) => ({ ok: false as const, reason: `native build failed: ${message(e)}` }));
    cache.set(key, p);
  }
  return p;
}

async function build(opts: BuildOptions): Promise<NativeBuild | NativeUnavailable> {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return { ok: false, reason: "no permission to load native code (needs --allow-ffi)" };
    }
  } catch {
    // Permissions API unavailable: dlopen will tell.
  }
  const file = opts.source ?? "forward.cpp";
  const stem = file.replace(/\.cpp$/, "");
  let source: string, srcPath: string;
  try {
    srcPath = fileURLToPath(new URL(`./${file}`, import.meta.url));
    source = await Deno.readTextFile(srcPath);
  } catch (e) {
    return { ok: false, reason: `cannot read lib/native/${file}: ${message(e)}` };
  }
  const found = await findCompiler(opts.compiler);
  if (typeof found === "string") return { ok: false, reason: found };
  const cpu = await cpuInfo();
  const target = await nativeTarget(found.cmd);
  const flags = [...NATIVE_FLAGS];
  const hash = createHash("sha256")
    .update(JSON.stringify([source, flags, found.cmd, found.version, cpu.model, cpu.flags, target]))
    .digest("hex")
    .slice(0, 16);
  const dir = opts.cacheDir ?? envVar("BKD_NATIVE_CACHE") ?? `${repoRoot()}/data/cache/native`;
  const path = `${dir}/${stem}-${hash}.so`;
  const info = {
    ok: true as const,
    path,
    compiler: found.cmd,
    compilerVersion: found.version.split("\n")[0],
    flags,
    cpu: cpu.model,
  };
  if (await exists(path)) return { ...info, compiled: false };
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    return { ok: false, reason: `cannot create ${dir}: ${message(e)}` };
  }
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const r = await run(found.cmd, [...flags, "-o", tmp, srcPath]);
  if (typeof r === "string" || !r.ok) {
    await Deno.remove(tmp).catch(() => {});
    const text = typeof r === "string" ? r : (r.err || r.out).trim();
    return { ok: false, reason: `${found.cmd} could not compile ${file}: ${text.slice(0, 2000)}` };
  }
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    if (!(await exists(path))) return { ok: false, reason: `cannot write ${path}: ${message(e)}` };
  }
  return { ...info, compiled: true };
}

/** One open library per path for the whole process (never closed: engines may outlive any one user). */
const openLibraries = new Map<string, Deno.DynamicLibrary<Deno.ForeignLibraryInterface>>();

/** The library at `path` with `symbols`, opened once per process (a built path holds one source). */
export function openNativeLibrary<S extends Deno.ForeignLibraryInterface>(
  path: string,
  symbols: S,
): Deno.DynamicLibrary<S> {
  let lib = openLibraries.get(path);
  if (!lib) {
    lib = Deno.dlopen(path, symbols);
    openLibraries.set(path, lib);
  }
  return lib as Deno.DynamicLibrary<S>;
}

/** The NUL-terminated text in `buf` (an engine's error buffer). */
export function cString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}
