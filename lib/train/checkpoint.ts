/**
 * Training checkpoints: one binary file per run directory, replaced atomically after every epoch.
 *
 * File `checkpoint.bin`: the 8-byte magic `BKDCKPT2`, a little-endian u32 header length, the
 * UTF-8 JSON header (config hash, epoch, history, optimizer step, array lengths, free `meta`), zero
 * padding to a multiple of 4 bytes, every float32 array back to back — the model weights
 * (`model.getWeights()` order), then the optimizer slots — and last the 32-byte SHA-256 of everything
 * before it. It is written to a temporary file, synced and renamed over the old one, so a crash leaves
 * either the old or the new checkpoint, never a torn one.
 *
 * Loading verifies the SHA-256 and every length first: a truncated, flipped or edited file is a
 * `CheckpointError` naming the file and the fix (delete it to start the run fresh), never a bare
 * `SyntaxError`/`RangeError` or a resume from damaged weights. Files of the first format
 * (`BKDCKPT1`, no digest) are refused the same way: they cannot be verified.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { CheckpointError } from "../models/io.ts";
import { sha256Hex, stableJson } from "../util/digest.ts";
import type { OptimizerState } from "../learn/optim.ts";

/** What a checkpoint holds. */
export interface Checkpoint<H = unknown> {
  /** Hash of everything that determines the run (see {@link configHash}). */
  configHash: string;
  /** Epochs finished. */
  epoch: number;
  /** Per-epoch records so far. */
  history: H[];
  /** Model weights, `model.getWeights()` order. */
  weights: Float32Array[];
  /** Optimizer state after the last finished step. */
  optimizer: OptimizerState;
  /** Anything else worth keeping (JSON). */
  meta?: Record<string, unknown>;
}

export { stableJson };

const MAGIC = "BKDCKPT2";
/** Magic of the first format (no digest), refused on load. */
const MAGIC_V1 = "BKDCKPT1";
const DIGEST_BYTES = 32;
/** File name inside the checkpoint directory. */
export const CHECKPOINT_FILE = "checkpoint.bin";

/** Stable SHA-256 (hex, 16 chars) of a JSON value, object keys sorted. */
export function configHash(value: unknown): string {
  return createHash("sha256").update(stableJson(value)).digest("hex").slice(0, 16);
}

/**
 * A cheap fingerprint of training data: sizes plus a hash of every `stride`-th input value and all
 * labels/targets. Changes in the data set almost always change it.
 */
export function dataFingerprint(
  d: { x: Float32Array; shape: number[]; y?: Int32Array; targets?: Float32Array },
): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ shape: d.shape, x: d.x.length, y: d.y?.length ?? 0, t: d.targets?.length ?? 0 }));
  const stride = Math.max(1, Math.floor(d.x.length / (1 << 20)));
  const sample = new Float32Array(Math.ceil(d.x.length / stride));
  for (let i = 0, j = 0; i < d.x.length; i += stride, j++) sample[j] = d.x[i];
  h.update(new Uint8Array(sample.buffer));
  if (d.y) h.update(new Uint8Array(d.y.buffer, d.y.byteOffset, d.y.byteLength));
  if (d.targets) h.update(new Uint8Array(d.targets.buffer, d.targets.byteOffset, d.targets.byteLength));
  return h.digest("hex").slice(0, 16);
}

/** Write `ckpt` into `dir/checkpoint.bin` atomically (creating `dir`). */
export async function saveCheckpoint<H>(dir: string, ckpt: Checkpoint<H>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const arrays = [...ckpt.weights, ...ckpt.optimizer.slots.flat()];
  const header = new TextEncoder().encode(JSON.stringify({
    format: 1,
    configHash: ckpt.configHash,
    epoch: ckpt.epoch,
    history: ckpt.history,
    meta: ckpt.meta ?? {},
    weights: ckpt.weights.map((w) => w.length),
    optimizer: {
      kind: ckpt.optimizer.kind,
      step: ckpt.optimizer.step,
      slots: ckpt.optimizer.slots.map((s) => s.map((a) => a.length)),
    },
  }));
  const pre = 8 + 4 + header.length;
  const pad = (4 - (pre % 4)) % 4;
  const body = pre + pad + arrays.reduce((a, w) => a + w.byteLength, 0);
  const buf = new Uint8Array(body + DIGEST_BYTES);
  buf.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(buf.buffer).setUint32(8, header.length, true);
  buf.set(header, 12);
  let off = pre + pad;
  for (const a of arrays) {
    buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off);
    off += a.byteLength;
  }
  buf.set(hexBytes(sha256Hex(buf.subarray(0, body))), body);
  const path = `${dir}/${CHECKPOINT_FILE}`;
  const tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let w = 0;
    while (w < buf.length) w += await f.write(buf.subarray(w));
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}

/** Read `dir/checkpoint.bin`; `undefined` if there is none. Throws on a corrupt file. */
export async function loadCheckpoint<H>(dir: string): Promise<Checkpoint<H> | undefined> {
  const path = `${dir}/${CHECKPOINT_FILE}`;
  let buf: Uint8Array;
  try {
    buf = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const fix = `Delete ${path} to start this training run fresh (its finished epochs are lost), ` +
    `or point checkpointDir elsewhere.`;
  const bad = (problem: string) => new CheckpointError(path, problem, fix);
  const magic = new TextDecoder().decode(buf.subarray(0, 8));
  if (magic === MAGIC_V1) {
    throw bad("is an old-format checkpoint without a SHA-256 digest (cannot be verified)");
  }
  if (magic !== MAGIC) throw bad("is not a boundary-kd checkpoint (bad magic)");
  if (buf.length < 12 + DIGEST_BYTES) throw bad(`is truncated (${buf.length} bytes)`);
  const body = buf.length - DIGEST_BYTES;
  if (sha256Hex(buf.subarray(0, body)) !== bytesHex(buf.subarray(body))) {
    throw bad("does not match its SHA-256 digest (truncated, corrupt or edited)");
  }
  const hl = new DataView(buf.buffer, buf.byteOffset).getUint32(8, true);
  if (12 + hl > body) throw bad(`declares a ${hl}-byte header but holds ${body - 12} bytes after it`);
  // deno-lint-ignore no-explicit-any
  let h: any;
  try {
    h = JSON.parse(new TextDecoder().decode(buf.subarray(12, 12 + hl)));
  } catch (e) {
    throw bad(`has a header that is not valid JSON (${(e as Error).message})`);
  }
  const lengthsOk = (a: unknown) => Array.isArray(a) && a.every((v) => Number.isSafeInteger(v) && v >= 0);
  if (
    typeof h !== "object" || h === null || !lengthsOk(h.weights) || !Array.isArray(h.optimizer?.slots) ||
    !h.optimizer.slots.every(lengthsOk)
  ) {
    throw bad("has a header without the weight and optimizer array lengths");
  }
  const pre = 12 + hl;
  let off = pre + (4 - (pre % 4)) % 4;
  const take = (n: number) => {
    if (off + n * 4 > body) throw bad("is shorter than its header says (truncated)");
    const a = new Float32Array(n);
    new Uint8Array(a.buffer).set(buf.subarray(off, off + n * 4));
    off += n * 4;
    return a;
  };
  const weights = (h.weights as number[]).map(take);
  const slots = (h.optimizer.slots as number[][]).map((s) => s.map(take));
  if (off !== body) throw bad(`holds ${body - off} bytes more than its header describes`);
  return {
    configHash: h.configHash,
    epoch: h.epoch,
    history: h.history,
    meta: h.meta,
    weights,
    optimizer: { kind: h.optimizer.kind, step: h.optimizer.step, slots },
  };
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesHex(b: Uint8Array): string {
  return Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
}
