/**
 * Model weights as plain arrays, and checkpoints on disk (Deno fs APIs only).
 *
 * A checkpoint is a folder holding
 *   spec.json      the {@link ModelSpec} (rebuilds the network)
 *   meta.json      caller metadata (any JSON)
 *   manifest.json  format tag, per-weight {name, shape, offset, length}, byte total, FNV-1a checksum,
 *                  and `sha256`: SHA-256 of weights.bin and of the canonical JSON of spec and meta
 *   weights.bin    every weight in `model.weights` order (including batch-norm moving statistics),
 *                  float32 little-endian, concatenated
 * Saves are atomic: the files are written to a sibling staging folder that is renamed into place, so an
 * interrupted save leaves the previous checkpoint (or none), never a half-written one. Loading checks every
 * file and throws a {@link CheckpointError} naming the file, what mismatched and the fix: a flipped
 * weight byte, an edited meta.json (e.g. a changed `testAcc`) or spec.json is detected, while
 * re-indenting or reordering keys of the JSON files is not a change.
 *
 * Folders saved before the SHA-256 digests existed (no `sha256` in manifest.json) still load, after
 * the FNV-1a check of weights.bin; their meta and spec cannot be verified, which the result says in
 * `integrity` ({verified: false, warning}). Saving the model again adds the digests.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { jsonDigest, sha256Hex } from "../util/digest.ts";
import { buildModel, type ModelSpec } from "./registry.ts";

/** Format tag written to manifest.json. */
export const CHECKPOINT_FORMAT = "boundary-kd-checkpoint/1";

/** A checkpoint file that is missing, unreadable or inconsistent. */
export class CheckpointError extends Error {
  /** The offending file. */
  readonly file: string;

  /** What is wrong with it (without the fix). */
  readonly problem: string;

  /**
   * `file` is the path; `problem` says what is wrong. The message adds what to do: `fix`, or by
   * default deleting the folder and retraining.
   */
  constructor(file: string, problem: string, fix?: string) {
    const dir = file.replace(/\/[^/]*$/, "");
    super(
      `checkpoint file ${file}: ${problem}. ` +
        (fix ?? `The checkpoint cannot be used: delete the folder ${dir} and retrain (or save again).`),
    );
    this.name = "CheckpointError";
    this.file = file;
    this.problem = problem;
  }
}

/** One weight's entry in manifest.json. */
export interface ManifestEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements. */
  offset: number;
  /** Length in float32 elements. */
  length: number;
}

/** Contents of manifest.json. */
export interface Manifest {
  format: string;
  weights: ManifestEntry[];
  totalBytes: number;
  /** FNV-1a 32-bit hash of weights.bin, hex. */
  checksum: string;
  /** SHA-256 (hex) of weights.bin and of the canonical JSON of spec.json and meta.json (absent in folders
   * saved before it existed). */
  sha256?: { weights: string; spec: string; meta: string };
}

/** Whether a loaded folder's content was verified against its SHA-256 digests. */
export interface ModelIntegrity {
  /** True when weights, spec and meta matched their recorded SHA-256 digests. */
  verified: boolean;
  /** SHA-256 of weights.bin (a fingerprint of the weights), when recorded. */
  weightsSha256?: string;
  /** Why the folder could not be verified (an old folder without digests). */
  warning?: string;
}

/** Copies of every weight of `model` (`model.weights` order, incl. batch-norm moving stats). */
export function getWeightsFlat(model: tfl.LayersModel): Float32Array[] {
  return model.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array));
}

/** Overwrite every weight of `model` from `ws` (same order and sizes as {@link getWeightsFlat}). */
export function setWeightsFlat(model: tfl.LayersModel, ws: Float32Array[]): void {
  const vars = model.weights;
  if (ws.length !== vars.length) {
    throw new Error(`setWeightsFlat: model ${model.name} has ${vars.length} weights, got ${ws.length}`);
  }
  const tensors = vars.map((v, i) => {
    const shape = v.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    if (ws[i].length !== size) {
      throw new Error(
        `setWeightsFlat: weight ${i} (${v.name}) needs ${size} values [${shape}], got ${ws[i].length}`,
      );
    }
    return tf.tensor(ws[i], shape, "float32");
  });
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/** FNV-1a 32-bit hash of `bytes`, as 8 hex digits. */
export function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

let stagingCounter = 0;

/**
 * Save `model` built from `spec` with JSON `meta` into folder `dir` (created, or replaced atomically).
 */
export async function saveModel(
  dir: string,
  model: tfl.LayersModel,
  spec: ModelSpec,
  meta: unknown = {},
): Promise<void> {
  const ws = getWeightsFlat(model);
  const entries: ManifestEntry[] = [];
  let offset = 0;
  model.weights.forEach((v, i) => {
    entries.push({ name: v.name, shape: v.shape as number[], offset, length: ws[i].length });
    offset += ws[i].length;
  });
  const flat = new Float32Array(offset);
  ws.forEach((w, i) => flat.set(w, entries[i].offset));
  const bytes = littleEndianBytes(flat);
  const metaJson = meta ?? {};
  const manifest: Manifest = {
    format: CHECKPOINT_FORMAT,
    weights: entries,
    totalBytes: bytes.length,
    checksum: fnv1a(bytes),
    sha256: { weights: sha256Hex(bytes), spec: jsonDigest(spec), meta: jsonDigest(metaJson) },
  };

  const clean = dir.replace(/\/+$/, "");
  const parent = clean.includes("/") ? clean.replace(/\/[^/]*$/, "") || "/" : ".";
  await Deno.mkdir(parent, { recursive: true });
  const tag = `${Deno.pid}-${Date.now()}-${stagingCounter++}`;
  const staging = `${clean}.saving-${tag}`;
  await Deno.mkdir(staging, { recursive: true });
  try {
    await Deno.writeTextFile(`${staging}/spec.json`, JSON.stringify(spec, null, 2) + "\n");
    await Deno.writeTextFile(`${staging}/meta.json`, JSON.stringify(metaJson, null, 2) + "\n");
    await Deno.writeFile(`${staging}/weights.bin`, bytes);
    await Deno.writeTextFile(`${staging}/manifest.json`, JSON.stringify(manifest) + "\n");
    const old = `${clean}.old-${tag}`;
    const existed = await exists(clean);
    if (existed) await Deno.rename(clean, old);
    await Deno.rename(staging, clean);
    if (existed) await Deno.remove(old, { recursive: true });
  } catch (e) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Load the checkpoint in `dir`: verify its files (see the module doc), rebuild the network from
 * spec.json and fill in weights.bin. Throws {@link CheckpointError} naming the file, what mismatched
 * and the fix.
 */
export async function loadModel(
  dir: string,
): Promise<{ model: tfl.LayersModel; spec: ModelSpec; meta: unknown; integrity: ModelIntegrity }> {
  const clean = dir.replace(/\/+$/, "");
  const spec = await readJson(`${clean}/spec.json`) as ModelSpec;
  const meta = await readJson(`${clean}/meta.json`);
  const manifestFile = `${clean}/manifest.json`;
  const manifest = await readJson(manifestFile) as Manifest;
  if (manifest?.format !== CHECKPOINT_FORMAT || !Array.isArray(manifest.weights)) {
    throw new CheckpointError(manifestFile, `not a ${CHECKPOINT_FORMAT} manifest`);
  }
  const weightsFile = `${clean}/weights.bin`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(weightsFile);
  } catch (e) {
    throw new CheckpointError(weightsFile, `cannot be read (${(e as Error).message})`);
  }
  if (bytes.length !== manifest.totalBytes) {
    throw new CheckpointError(
      weightsFile,
      `has ${bytes.length} bytes but manifest.json expects ${manifest.totalBytes} (truncated or corrupt)`,
    );
  }
  const integrity = verifyDigests(clean, manifest, bytes, spec, meta);
  let model: tfl.LayersModel;
  try {
    model = buildModel(spec, 0);
  } catch (e) {
    throw new CheckpointError(
      `${clean}/spec.json`,
      `does not describe a buildable model (${(e as Error).message})`,
    );
  }
  const flat = fromLittleEndianBytes(bytes);
  const vars = model.weights;
  const shapeOk = vars.length === manifest.weights.length &&
    vars.every((v, i) => JSON.stringify(v.shape) === JSON.stringify(manifest.weights[i].shape));
  if (!shapeOk) {
    model.dispose();
    throw new CheckpointError(manifestFile, `weight shapes do not match the network in spec.json`);
  }
  setWeightsFlat(model, manifest.weights.map((e) => flat.subarray(e.offset, e.offset + e.length)));
  return { model, spec, meta, integrity };
}

/**
 * A cached model folder: `undefined` when `dir` does not exist (nothing cached yet), else the verified
 * {@link loadModel} result. A folder that exists but fails verification is never treated as absent:
 * the {@link CheckpointError} is rethrown with `fix` (what the caller's user should do) as its advice.
 */
export async function loadModelIfPresent(
  dir: string,
  fix?: string,
): Promise<Awaited<ReturnType<typeof loadModel>> | undefined> {
  const clean = dir.replace(/\/+$/, "");
  if (!(await exists(clean))) return undefined;
  try {
    return await loadModel(clean);
  } catch (e) {
    if (e instanceof CheckpointError && fix !== undefined) throw new CheckpointError(e.file, e.problem, fix);
    throw e;
  }
}

/**
 * Compare weights.bin, spec and meta with the SHA-256 digests of manifest.json (or, for folders saved
 * before those existed, weights.bin with its FNV-1a checksum). Throws on the first mismatch.
 */
function verifyDigests(
  dir: string,
  manifest: Manifest,
  bytes: Uint8Array,
  spec: unknown,
  meta: unknown,
): ModelIntegrity {
  const d = manifest.sha256;
  if (!d) {
    if (fnv1a(bytes) !== manifest.checksum) {
      throw new CheckpointError(`${dir}/weights.bin`, `checksum mismatch (corrupt)`);
    }
    return {
      verified: false,
      warning: `${dir} was saved without SHA-256 digests: its weights passed the older FNV-1a check, but ` +
        `an edit of meta.json or spec.json cannot be detected; save it again (or retrain) to add them`,
    };
  }
  const weights = sha256Hex(bytes);
  if (weights !== d.weights) {
    throw new CheckpointError(
      `${dir}/weights.bin`,
      `checksum mismatch (corrupt): SHA-256 ${weights.slice(0, 12)}… but manifest.json records ` +
        `${String(d.weights).slice(0, 12)}…`,
    );
  }
  for (const [name, value, want] of [["spec", spec, d.spec], ["meta", meta, d.meta]] as const) {
    if (jsonDigest(value) !== want) {
      throw new CheckpointError(
        `${dir}/${name}.json`,
        `content does not match the SHA-256 recorded in manifest.json when the model was saved ` +
          `(the file was edited or is corrupt)`,
      );
    }
  }
  return { verified: true, weightsSha256: weights };
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const what = e instanceof Deno.errors.NotFound
      ? "is missing"
      : `cannot be read (${(e as Error).message})`;
    throw new CheckpointError(file, what);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `is not valid JSON (${(e as Error).message})`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function littleEndianBytes(a: Float32Array): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i], true);
  return out;
}

function fromLittleEndianBytes(b: Uint8Array): Float32Array {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
