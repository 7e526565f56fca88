/**
 * What a unit that trains a network leaves in the run store, and reading it back, the same way in
 * every family: the model as `weights.bin` (every weight as float32, in `getWeightsFlat` order) and
 * `model.json` (its kit spec and the length of each weight), and for a student cell (one student of a
 * table: method × seed) its `metrics.json` and run record `record.json`. A cell's record is read back
 * as this execution's ({@link recordsOfThisExecution}).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { getWeightsFlat, setWeightsFlat } from "../models/io.ts";
import { buildModel, type ModelSpec } from "../models/registry.ts";
import type { RunRecord } from "../results/record.ts";
import type { RunStore } from "../runner/store.ts";
import { recordsOfThisExecution } from "./records.ts";

/** A model's weights as one buffer (the order and sizes of `getWeightsFlat`). */
export function packWeights(model: tfl.LayersModel): Uint8Array {
  const ws = getWeightsFlat(model);
  const all = new Float32Array(ws.reduce((a, w) => a + w.length, 0));
  let off = 0;
  for (const w of ws) {
    all.set(w, off);
    off += w.length;
  }
  return new Uint8Array(all.buffer);
}

/** Rebuild a kit model from its spec and {@link packWeights} bytes. */
export function unpackModel(spec: ModelSpec, bytes: Uint8Array): tfl.LayersModel {
  const model = buildModel(spec, 0);
  const all = new Float32Array(bytes.slice().buffer);
  let off = 0;
  const ws = model.weights.map((v) => {
    const size = (v.shape as number[]).reduce((a, b) => a * b, 1);
    const w = all.subarray(off, off + size);
    off += size;
    return w;
  });
  if (off !== all.length) {
    model.dispose();
    throw new Error(
      `stored weights hold ${all.length} values, the ${spec.name} model needs ${off}: the run store is damaged; delete the unit's folder to redo it`,
    );
  }
  setWeightsFlat(model, ws);
  return model;
}

/** `model` (a kit network of `spec`) as unit output files: `weights.bin` and `model.json`. */
export function modelFiles(model: tfl.LayersModel, spec: ModelSpec): Record<string, string | Uint8Array> {
  const weights = model.weights.map((w) => (w.shape as number[]).reduce((a, b) => a * b, 1));
  return { "weights.bin": packWeights(model), "model.json": JSON.stringify({ spec, weights }) + "\n" };
}

/** A student cell's outputs: {@link modelFiles} plus `metrics.json` and `record.json`. */
export function studentCellFiles(
  cell: { model: tfl.LayersModel; spec: ModelSpec; metrics: unknown; record: RunRecord },
): Record<string, string | Uint8Array> {
  return {
    ...modelFiles(cell.model, cell.spec),
    "metrics.json": JSON.stringify(cell.metrics) + "\n",
    "record.json": JSON.stringify(cell.record, null, 2) + "\n",
  };
}

/** A finished student cell's metrics and run record (as this execution's). */
export async function readStudentCell<M>(
  store: RunStore,
  key: string,
): Promise<{ metrics: M; record: RunRecord }> {
  const metrics = JSON.parse(await store.readText(key, "metrics.json")) as M;
  const [record] = recordsOfThisExecution([JSON.parse(await store.readText(key, "record.json"))], store);
  return { metrics, record };
}
