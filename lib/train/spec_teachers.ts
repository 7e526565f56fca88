/**
 * Teachers of any {@link ModelSpec} (`getTeacher` only knows the DB3 families and builds specs without
 * options, so ResNet depths and widths, MLPs and small ViTs are trained here with an explicit recipe),
 * cached under `data/teachers/cake-<dataset>-<spec>-<scale>-s<seed>-<hash>` and verified when loaded.
 *
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { loadDataset } from "../data/datasets.ts";
import type { DatasetName } from "../data/types.ts";
import type { ModelSpec } from "../models/registry.ts";
import { loadModelIfPresent, saveModel } from "../models/io.ts";
import type { OptimizerConfig } from "../learn/optim.ts";
import { repoRoot } from "../util/paths.ts";
import type { ScheduleSpec } from "./schedule.ts";
import { retrainFix, retrainRequested } from "./teachers.ts";
import { train } from "./trainer.ts";

/** How a teacher of an arbitrary spec is trained (hard-label CE on the real training split). */
export interface SpecTeacherRecipe {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleSpec;
  /** First `trainLimit` training images (all if absent). */
  trainLimit?: number;
  /** First `testLimit` test images for the teacher's own accuracy (all if absent). */
  testLimit?: number;
  workers?: number | "auto";
}

/** Short readable name of a spec: `resnet8w16`, `mlp100x4`, `vit4d2`, `cake-cnn`. */
export function specLabel(spec: Pick<ModelSpec, "name" | "options">): string {
  const o = spec.options ?? {};
  if (spec.name === "resnet") return `resnet${o.depth}${o.width ? `w${o.width}` : ""}`;
  if (spec.name === "mlp") return `mlp${o.hidden ?? 100}x${o.depth ?? 4}`;
  if (spec.name.startsWith("vit") && o.depth !== undefined) return `${spec.name}d${o.depth}`;
  return spec.name;
}

/** Short stable hash of a JSON value (the spec-teacher cache keys; FNV-1a over sorted-key JSON). */
export function shortHash(v: unknown): string {
  const s = stableJson(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * Train (or load from `data/teachers/cake-<dataset>-<spec>-<scale>-s<seed>-<hash>`) a teacher of
 * `spec` with `recipe`; the hash covers spec and recipe, so a changed setting never meets an old
 * checkpoint. A cached folder is verified when loaded, as in `getTeacher`.
 */
export async function getSpecTeacher(req: {
  dataset: DatasetName;
  spec: Omit<ModelSpec, "inputShape" | "numClasses">;
  recipe: SpecTeacherRecipe;
  scale: string;
  seed: number;
  dir?: string;
  retrain?: boolean;
}): Promise<{ model: tfl.LayersModel; spec: ModelSpec; cached: boolean; key: string; wallTimeSec: number }> {
  const root = req.dir ?? Deno.env.get("BKD_TEACHER_DIR") ?? `${repoRoot()}/data/teachers`;
  const key = `cake-${req.dataset}-${specLabel(req.spec)}-${req.scale}-s${req.seed}-${
    shortHash({ s: req.spec, r: req.recipe })
  }`;
  const dir = `${root}/${key}`;
  const cached = retrainRequested(req.retrain) ? undefined : await loadModelIfPresent(dir, retrainFix(dir));
  if (cached) {
    const meta = cached.meta as { wallTimeSec: number };
    return { model: cached.model, spec: cached.spec, cached: true, key, wallTimeSec: meta.wallTimeSec };
  }
  const r = req.recipe;
  const trainSet = await loadDataset(req.dataset, "train", r.trainLimit ? { limit: r.trainLimit } : {});
  const testSet = await loadDataset(req.dataset, "test", r.testLimit ? { limit: r.testLimit } : {});
  const spec: ModelSpec = {
    ...req.spec,
    inputShape: trainSet.shape.slice(1),
    numClasses: trainSet.numClasses,
  };
  const res = await train(spec, { x: trainSet.x, shape: trainSet.shape, y: trainSet.y }, {
    epochs: r.epochs,
    batchSize: r.batchSize,
    seed: req.seed,
    loss: { kind: "ce" },
    optimizer: r.optimizer,
    schedule: r.schedule,
    workers: r.workers ?? "auto",
    label: `teacher ${key}`,
  }, testSet);
  await saveModel(dir, res.model, spec, {
    dataset: req.dataset,
    scale: req.scale,
    seed: req.seed,
    recipe: r,
    testAcc: res.finalTestAcc,
    testImages: testSet.shape[0],
    trainImages: trainSet.shape[0],
    wallTimeSec: res.wallTimeSec,
    imagesPerSec: res.imagesPerSec,
    createdAt: new Date().toISOString(),
  });
  return { model: res.model, spec, cached: false, key, wallTimeSec: res.wallTimeSec };
}
