/**
 * Training checkpoints: one binary file per run directory, replaced atomically after every epoch.
 *
 * File `checkpoint.bin`: the 8-byte magic `BKDCKPT1`, a little-endian u32 header length, the
 * UTF-8 JSON header (config hash, epoch, history, optimizer step, array lengths, free `meta`), zero
 * padding to a multiple of 4 bytes, then every float32 array back to back: the model weights
 * (`model.getWeights()` order), then the optimizer slots. It is written to a temporary file, synced
 * and renamed over the old one, so a crash leaves either the old or the new checkpoint, never a
 * torn one.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { OptimizerState } from "./optim.ts";

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

const MAGIC = "BKDCKPT1";
/** File name inside the checkpoint directory. */
export const CHECKPOINT_FILE = "checkpoint.bin";

/** Stable SHA-256 (hex, 16 chars) of a JSON value, object keys sorted. */
export function configHash(value: unknown): string {
  return createHash("sha256").update(stableJson(value)).digest("hex").slice(0, 16);
}

/** JSON with object keys sorted, so equal configs hash equally whatever their key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
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
  const total = pre + pad + arrays.reduce((a, w) => a + w.byteLength, 0);
  const buf = new Uint8Array(total);
  buf.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(buf.buffer).setUint32(8, header.length, true);
  buf.set(header, 12);
  let off = pre + pad;
  for (const a of arrays) {
    buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off);
    off += a.byteLength;
  }
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
  if (new TextDecoder().decode(buf.subarray(0, 8)) !== MAGIC) {
    throw new Error(`${path} is not a boundary-kd checkpoint (bad magic); delete it to start fresh`);
  }
  const hl = new DataView(buf.buffer, buf.byteOffset).getUint32(8, true);
  const h = JSON.parse(new TextDecoder().decode(buf.subarray(12, 12 + hl)));
  const pre = 12 + hl;
  let off = pre + (4 - (pre % 4)) % 4;
  const take = (n: number) => {
    if (off + n * 4 > buf.length) throw new Error(`${path} is truncated; delete it to start fresh`);
    const a = new Float32Array(n);
    new Uint8Array(a.buffer).set(buf.subarray(off, off + n * 4));
    off += n * 4;
    return a;
  };
  const weights = (h.weights as number[]).map(take);
  const slots = (h.optimizer.slots as number[][]).map((s) => s.map(take));
  return {
    configHash: h.configHash,
    epoch: h.epoch,
    history: h.history,
    meta: h.meta,
    weights,
    optimizer: { kind: h.optimizer.kind, step: h.optimizer.step, slots },
  };
}
