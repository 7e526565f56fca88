/**
 * Resolve a teacher argument as the serve command and notebooks take it:
 *
 * - `dataset:model:scale[:seed]` (e.g. `mnist:db3-lenet5:laptop`, model may be empty for the default):
 *   the kit's cached teacher (`getTeacher`, trained on first use);
 * - a folder with `spec.json` (a kit checkpoint, `saveModel` layout);
 * - a folder with `model.json` (a TF.js LayersModel/GraphModel; adapters apply).
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import type { DatasetName } from "../data/mod.ts";
import { loadModel } from "../models/io.ts";
import type { ModelName, ModelSpec } from "../models/registry.ts";
import { parseScale } from "../scale.ts";
import { InputError } from "../util/checks.ts";
import { getTeacher } from "../train/teachers.ts";
import { loadTeacher, type LoadTeacherOptions } from "./load.ts";
import { pathExists } from "../util/files.ts";

/** A resolved teacher. */
export interface ResolvedTeacher {
  model: tfl.LayersModel;
  inputShape: number[];
  numClasses: number;
  /** Kit model spec when the teacher is a kit network (lets a worker pool rebuild it). */
  spec: ModelSpec | null;
  /** Where it came from, for logs. */
  source: string;
}

/** Resolve `arg` (see the module doc); `fileOptions` apply to TF.js folders. */
export async function resolveTeacher(
  arg: string,
  fileOptions: LoadTeacherOptions = {},
): Promise<ResolvedTeacher> {
  const dir = arg.replace(/\/+$/, "");
  if (await pathExists(`${dir}/spec.json`)) {
    const t = await loadModel(dir);
    return {
      model: t.model,
      inputShape: t.spec.inputShape,
      numClasses: t.spec.numClasses,
      spec: t.spec,
      source: `kit checkpoint ${dir}`,
    };
  }
  if (await pathExists(`${dir}/model.json`)) {
    const t = await loadTeacher(dir, fileOptions);
    return {
      model: t.model,
      inputShape: t.inputShape,
      numClasses: t.numClasses,
      spec: null,
      source: `TF.js ${t.source.format} ${dir}`,
    };
  }
  const parts = arg.split(":");
  if (parts.length < 3 || parts.length > 4) {
    throw new Error(
      `teacher "${arg}" is neither a model folder (model.json or spec.json) nor dataset:model:scale[:seed]`,
    );
  }
  const [dataset, model, scale, seed] = parts;
  if (seed && !/^\d+$/.test(seed)) {
    throw new InputError(
      `teacher "${arg}": seed "${seed}" is not a non-negative integer; write e.g. ${dataset}:${model}:${scale}:1`,
    );
  }
  const t = await getTeacher({
    dataset: dataset as DatasetName,
    model: (model || undefined) as ModelName | undefined,
    scale: parseScale(scale),
    seed: seed ? Number(seed) : 1,
  });
  return {
    model: t.model,
    inputShape: t.spec.inputShape,
    numClasses: t.spec.numClasses,
    spec: t.spec,
    source: `kit teacher ${dataset}:${t.spec.name}:${scale}:s${seed ?? 1} (test acc ${t.meta.testAcc})`,
  };
}
