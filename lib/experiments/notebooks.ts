/**
 * Notebook id → its experiment as a run plan, for `deno task bkd plan|run --notebook ID`. One entry
 * per notebook: how its spec is built from the common options (scale, seeds, methods, teacher,
 * `--set` overrides) and how that spec becomes a plan once the teacher's fingerprint is known.
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";
import type { RunPlan } from "../runner/plan.ts";
import type { Scale } from "../scale.ts";
import { resolveTeacher } from "./db3_label_units.ts";
import { db3Plan, db3Spec } from "./db3_plan.ts";
import type { Db3Spec, Db3TableMethod } from "./db3_spec.ts";

/** What every notebook experiment takes from the command line. */
export interface NotebookRequest {
  scale: Scale;
  seeds?: number[];
  /** Seed of the labeling/transfer set where the experiment has one (default the first seed). */
  labelSeed?: number;
  /** Rows to run (names the notebook's family knows). */
  methods?: string[];
  /** Teacher source in its string form (default the kit recipe). */
  teacher?: string;
  engine?: TeacherEngine;
  /** Settings overrides, e.g. `{student: {epochs: 20}}` (unknown keys are an error). */
  override?: Record<string, unknown>;
}

/** A notebook's experiment as the runner CLI sees it. */
export interface NotebookExperiment {
  /** One line: what the notebook runs. */
  title: string;
  /** The resolved spec (throws on bad input, naming it). */
  spec(req: NotebookRequest): Record<string, unknown>;
  /** The spec's teacher fingerprint (a kit recipe teacher is trained and cached on first use). */
  fingerprint(spec: Record<string, unknown>): Promise<string>;
  /** The plan of a spec. */
  plan(spec: Record<string, unknown>, fingerprint: string): RunPlan;
}

function db3Notebook(dataset: DatasetName, title: string): NotebookExperiment {
  return {
    title,
    spec: (r) =>
      db3Spec({
        dataset,
        scale: r.scale,
        seeds: r.seeds,
        labelSeed: r.labelSeed,
        methods: r.methods as Db3TableMethod[] | undefined,
        teacher: r.teacher,
        engine: r.engine,
        override: r.override,
      }) as unknown as Record<string, unknown>,
    fingerprint: async (s) => {
      const spec = s as unknown as Db3Spec;
      return (await resolveTeacher(spec, spec.methods.includes("kd") ? "probs" : "label")).fingerprint;
    },
    plan: (s, fp) => db3Plan(s as unknown as Db3Spec, fp),
  };
}

/** The registry: notebook id (its number) → experiment. */
export const NOTEBOOKS: Record<string, NotebookExperiment> = {
  "10": db3Notebook("mnist", "DB3 on MNIST: LeNet-5 → LeNet-5-half"),
  "11": db3Notebook("fmnist", "DB3 on Fashion-MNIST: LeNet-5 → LeNet-5-half"),
  "12": db3Notebook("cifar10", "DB3 on CIFAR-10: AlexNet → AlexNet-half"),
};

/** The experiment of notebook `id` (e.g. "10" or "10_db3_mnist"), or an error listing the known ones. */
export function notebookExperiment(id: string): NotebookExperiment {
  const e = NOTEBOOKS[id.match(/^\d+/)?.[0] ?? id];
  if (!e) {
    throw new RangeError(
      `no runner experiment for notebook "${id}"; known: ${Object.keys(NOTEBOOKS).join(", ")}`,
    );
  }
  return e;
}
