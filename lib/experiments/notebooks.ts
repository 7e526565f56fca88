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
import { type CakeNotebook, cakeNotebookPlan } from "./cake_notebooks.ts";
import { db3AblationSpec } from "./db3_ablations.ts";
import { ablationTeacher, db3AblationPlan } from "./db3abl_units.ts";
import type { Db3AblationSettings } from "./db3abl_spec.ts";
import { resolveTeacher } from "./open_teacher.ts";
import { quickstartSpec } from "./quickstart.ts";
import { quickstartPlan, quickstartTeacher } from "./quickstart_units.ts";
import type { QuickstartSettings } from "./quickstart.ts";
import type { DeepPartial } from "./settings.ts";
import type { ZsSettings } from "./zs_settings.ts";
import { ZS_TEACHER, zsNotebookSpec, zsPlan } from "./zs_spec.ts";
import { db3Plan, db3Spec, db3TeacherAccess } from "./db3_plan.ts";
import type { Db3TableMethod } from "./db3_spec.ts";

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
  /**
   * The run plan of a request (throws on bad input, naming it). With `resolve` the teacher is opened
   * and fingerprinted (a kit recipe teacher is trained and cached on first use); without, the keys
   * carry a placeholder — enough for `bkd plan`'s counts and estimates, not for running.
   */
  plan(req: NotebookRequest, resolve: boolean): Promise<RunPlan>;
}

/** Fingerprint placeholder of a plan made without opening the teacher. */
export const UNRESOLVED_TEACHER = "(teacher not resolved)";

function db3Notebook(dataset: DatasetName, title: string): NotebookExperiment {
  return {
    title,
    plan: async (r, resolve) => {
      const spec = db3Spec({
        dataset,
        scale: r.scale,
        seeds: r.seeds,
        labelSeed: r.labelSeed,
        methods: r.methods as Db3TableMethod[] | undefined,
        teacher: r.teacher,
        engine: r.engine,
        override: r.override,
      });
      return db3Plan(
        spec,
        resolve ? (await resolveTeacher(spec, db3TeacherAccess(spec))).fingerprint : UNRESOLVED_TEACHER,
      );
    },
  };
}

function zsNotebook(nb: "30" | "31" | "32" | "33", title: string): NotebookExperiment {
  return {
    title,
    plan: async (r, resolve) => {
      const spec = zsNotebookSpec(nb, r.scale, {
        seeds: r.seeds,
        teacher: r.teacher,
        engine: r.engine,
        settings: r.override as DeepPartial<ZsSettings> | undefined,
      });
      return zsPlan(
        spec,
        resolve ? (await resolveTeacher(spec, ZS_TEACHER)).fingerprint : UNRESOLVED_TEACHER,
      );
    },
  };
}

function cakeNotebook(nb: CakeNotebook, title: string): NotebookExperiment {
  // CAKE's teachers are units of the plan (keyed by their source), so nothing to resolve first.
  return {
    title,
    plan: (r) => cakeNotebookPlan(nb, r.scale, { seeds: r.seeds, teacher: r.teacher, settings: r.override }),
  };
}

/** The registry: notebook id (its number) → experiment. */
export const NOTEBOOKS: Record<string, NotebookExperiment> = {
  "00": {
    title: "Quickstart: two-moons soft labels and an MNIST teacher",
    plan: async (r, resolve) => {
      const spec = quickstartSpec({
        scale: r.scale,
        seed: r.seeds?.[0],
        teacher: r.teacher,
        settings: r.override as DeepPartial<QuickstartSettings> | undefined,
      });
      return quickstartPlan(
        spec,
        resolve
          ? (await resolveTeacher(quickstartTeacher(spec), { method: "quickstart" })).fingerprint
          : UNRESOLVED_TEACHER,
      );
    },
  },
  "10": db3Notebook("mnist", "DB3 on MNIST: LeNet-5 → LeNet-5-half"),
  "11": db3Notebook("fmnist", "DB3 on Fashion-MNIST: LeNet-5 → LeNet-5-half"),
  "12": db3Notebook("cifar10", "DB3 on CIFAR-10: AlexNet → AlexNet-half"),
  "13": {
    title: "DB3 ablations on MNIST",
    plan: async (r, resolve) => {
      const spec = db3AblationSpec({
        scale: r.scale,
        seed: r.seeds?.[0] ?? 1,
        teacher: r.teacher,
        settings: r.override as DeepPartial<Db3AblationSettings> | undefined,
      });
      return db3AblationPlan(
        spec,
        resolve
          ? (await resolveTeacher(ablationTeacher(spec), { method: "DB3 ablations" })).fingerprint
          : UNRESOLVED_TEACHER,
      );
    },
  },
  "20": cakeNotebook("20", "CAKE on two moons (Figure 1)"),
  "21": cakeNotebook("21", "CAKE on MNIST and Fashion-MNIST: LeNet-5 → LeNet-5-half"),
  "22": cakeNotebook("22", "CAKE on CIFAR-10: ResNets"),
  "23": cakeNotebook("23", "CAKE ablations (two moons, MNIST)"),
  "24": cakeNotebook("24", "CAKE across model types (MNIST)"),
  "30": zsNotebook("30", "ZSDB3KD on MNIST"),
  "31": zsNotebook("31", "ZSDB3KD on Fashion-MNIST"),
  "32": zsNotebook("32", "ZSDB3KD on CIFAR-10"),
  "33": zsNotebook("33", "ZSDB3KD ablations on MNIST"),
};

/** Notebooks that have no plan of their own, and why. */
export const NOT_PLANNED: Record<string, string> = {
  "40": "notebook 40 distils a teacher you bring; its cost is notebook 10's labeling on that teacher: " +
    "`bkd plan --notebook 10 --teacher <folder|url>`",
};

/** The experiment of notebook `id` (e.g. "10" or "10_db3_mnist"), or an error listing the known ones. */
export function notebookExperiment(id: string): NotebookExperiment {
  const n = id.match(/^\d+/)?.[0] ?? id;
  const e = NOTEBOOKS[n];
  if (!e && NOT_PLANNED[n]) throw new RangeError(NOT_PLANNED[n]);
  if (!e) {
    throw new RangeError(
      `no runner experiment for notebook "${id}"; known: ${Object.keys(NOTEBOOKS).join(", ")}`,
    );
  }
  return e;
}
