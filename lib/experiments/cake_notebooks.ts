/**
 * The specs of notebooks 20–24, built from their settings tables: `cakeNotebookPlan(notebook, scale,
 * overrides)` resolves the scale's settings once and lays out teachers, syntheses and student cells.
 *
 * - 20: two-moons Figure 1 — per seed a teacher MLP, naive CE / generator / CAKE sets, one student each;
 * - 21: MNIST and Fashion-MNIST, LeNet-5 → LeNet-5-half (teacher seed = seed);
 * - 22: CIFAR-10 ResNets; 24: MNIST model types (teacher set × student set, teacher seed 1);
 * - 23: the ablations on two-moons (a teacher per seed) and MNIST (one teacher, seed 1); variants
 *   that change only the student reuse the matching synthesis.
 *
 * @module
 */
import type { Scale } from "../scale.ts";
import type { SynthesisMethod } from "../cake/types.ts";
import type { RunPlan } from "../runner/plan.ts";
import type { RunStore } from "../runner/store.ts";
import { type CacheOption, type LocalExecutor, runExperiment, storeRootOf } from "./run.ts";
import { CAKE_TEACHER, cakeFolderTeacher } from "./cake_sets.ts";
import { resolveTeacher } from "./open_teacher.ts";
import { parseTeacherSource, requireAccess, type TeacherSource } from "./teacher_source.ts";
import { deepMerge, type DeepPartial, resolveSettings, settingsNote } from "./settings.ts";
import {
  CAKE_ABLATION_SETTINGS,
  CAKE_ABLATIONS,
  CAKE_IMAGE_SETTINGS,
  type CakeImageSettings,
  defaultAblations,
  LAPTOP_TOY_NOTE,
  type SynthKnobs,
  TWO_MOONS_SETTINGS,
  type TwoMoonsSettings,
} from "./cake_settings.ts";
import {
  CAKE_CIFAR_SETTINGS,
  CAKE_TYPE_SETTINGS,
  type CakeMatrixSettings,
  resolveMatrixSettings,
} from "./cake_matrix_settings.ts";
import {
  type CakeCell,
  cakePlan,
  type CakeSpec,
  type CakeSynthJob,
  type CakeTeacherJob,
  type CakeTeacherSource,
} from "./cake_spec.ts";
import { specLabel } from "../train/spec_teachers.ts";

/** Notebooks of the CAKE family. */
export type CakeNotebook = "20" | "21" | "22" | "23" | "24";

/** The resolved settings each notebook's spec carries. */
export interface CakeNotebookSettings {
  "20": TwoMoonsSettings;
  "21": CakeImageSettings;
  "22": CakeMatrixSettings;
  "23": { twoMoons: TwoMoonsSettings; mnist: CakeImageSettings };
  "24": CakeMatrixSettings;
}

/** What a notebook (or the command line) may change besides the scale. */
export interface CakeNotebookOverrides {
  /** Seeds (default: 20/23 three from 1 (smoke: 20 one, 23 two), 21/22/24 [1]). */
  seeds?: number[];
  /**
   * The teacher of an image notebook (21, and the MNIST part of 23): a kit recipe or a model folder
   * (CAKE needs `logits+grad`: an endpoint is refused). 20/22/24 train their own teachers.
   */
  teacher?: TeacherSource | string;
  /** Last-word settings over the scale's (20: two-moons; 21/23: images; 22/24: matrix). */
  settings?: Record<string, unknown>;
  /** 23: two-moons settings over the scale's. */
  toySettings?: DeepPartial<TwoMoonsSettings>;
  /** 21: the datasets (default mnist and fmnist). */
  datasets?: ("mnist" | "fmnist")[];
  /** 23: the variants per part (default {@link defaultAblations}). */
  variants?: { "two-moons"?: string[]; mnist?: string[] };
}

const METHODS: SynthesisMethod[] = ["naive", "generator", "cake"];

/** Lays out teachers, syntheses and cells, sharing a synthesis between cells that need the same set. */
class Layout {
  teachers: CakeTeacherJob[] = [];
  syntheses: CakeSynthJob[] = [];
  cells: CakeCell[] = [];
  teacher(t: CakeTeacherJob): number {
    this.teachers.push(t);
    return this.teachers.length - 1;
  }
  synth(j: CakeSynthJob): number {
    const s = JSON.stringify(j);
    const i = this.syntheses.findIndex((x) => JSON.stringify(x) === s);
    if (i >= 0) return i;
    this.syntheses.push(j);
    return this.syntheses.length - 1;
  }
  cell(c: CakeCell): void {
    this.cells.push(c);
  }
}

function moonsTeacher(s: TwoMoonsSettings, seed: number): CakeTeacherJob {
  return {
    name: `two-moons MLP s${seed}`,
    source: { kind: "moons", realPoints: s.realPoints, noise: s.noise, mlp: s.mlp, train: s.teacher, seed },
    testLimit: null,
    grid: s.grid,
  };
}

/** A teacher source of an image notebook: the override (recipe or folder) or the settings' recipe. */
async function imageTeacher(
  given: TeacherSource | string | undefined,
  dataset: "mnist" | "fmnist",
  s: CakeImageSettings,
  seed: number,
): Promise<CakeTeacherSource> {
  const src = given === undefined
    ? undefined
    : parseTeacherSource(given, { dataset, scale: s.teacherScale, seed });
  if (src) requireAccess(src, "logits+grad", "CAKE");
  if (src?.kind === "folder") {
    const folder = { dataset, path: src.path, ...(src.adapter ? { adapter: src.adapter } : {}) };
    const { fingerprint } = await resolveTeacher(cakeFolderTeacher(folder), CAKE_TEACHER);
    return { kind: "folder", ...folder, fingerprint };
  }
  return {
    kind: "recipe",
    dataset: src?.kind === "recipe" ? src.dataset : dataset,
    model: (src?.kind === "recipe" ? src.model : undefined) ?? s.teacherModel,
    scale: (src?.kind === "recipe" ? src.scale : undefined) ?? s.teacherScale,
    seed: (src?.kind === "recipe" ? src.seed : undefined) ?? seed,
  };
}

function imageCell(
  L: Layout,
  t: number,
  s: CakeImageSettings,
  dataset: "mnist" | "fmnist",
  seed: number,
  v: { name: string; label: string; synth?: DeepPartial<SynthKnobs>; hard?: boolean },
  experiment: string,
  method: string,
) {
  const synth = L.synth({
    teacher: t,
    method: "cake",
    seed,
    dataset,
    knobs: deepMerge<SynthKnobs>(s.synth, v.synth),
    batchesPerShard: s.batchesPerShard,
  });
  L.cell({
    synth,
    student: { name: s.studentModel, spec: { name: s.studentModel } },
    recipe: s.student,
    hard: v.hard ?? false,
    seed,
    group: dataset,
    variant: v.name,
    label: v.label,
    testLimit: s.testLimit,
    record: { experiment, method, dataset, notes: [] },
  });
}

function moonsCells(
  L: Layout,
  s: TwoMoonsSettings,
  scale: Scale,
  seed: number,
  t: number,
  variants: string[] | null,
) {
  const notes = scale === "laptop" ? [LAPTOP_TOY_NOTE] : [];
  const student = { name: "MLP", spec: { name: "mlp" as const, options: { ...s.mlp } } };
  const base = { student, recipe: s.student, seed, group: "two-moons", testLimit: null, grid: s.grid };
  if (!variants) {
    for (const method of METHODS) {
      const knobs = method === "generator" ? s.generator : method === "naive" ? s.naive : s.cake;
      const synth = L.synth({
        teacher: t,
        method,
        seed,
        dataset: "two-moons",
        knobs,
        batchesPerShard: s.batchesPerShard,
      });
      const record = { experiment: "cake-two-moons", method, dataset: "two-moons", notes };
      L.cell({ ...base, synth, hard: false, variant: method, label: method, record });
    }
    return;
  }
  for (const name of variants) {
    const v = CAKE_ABLATIONS[name];
    const knobs = deepMerge<SynthKnobs>(s.cake, v.synth);
    const synth = L.synth({
      teacher: t,
      method: "cake",
      seed,
      dataset: "two-moons",
      knobs,
      batchesPerShard: s.batchesPerShard,
    });
    const record = { experiment: "cake-ablation", method: `cake:${name}`, dataset: "two-moons", notes };
    L.cell({ ...base, synth, hard: v.hardTargets ?? false, variant: name, label: v.label, record });
  }
}

function checkVariants(names: string[]): string[] {
  for (const v of names) {
    if (!CAKE_ABLATIONS[v]) {
      throw new RangeError(`unknown CAKE ablation "${v}"; known: ${Object.keys(CAKE_ABLATIONS).join(", ")}`);
    }
  }
  return names;
}

function matrixLayout(L: Layout, s: CakeMatrixSettings, scale: Scale, seeds: number[], experiment: string) {
  for (const tn of s.teachers) {
    const t = L.teacher({
      name: tn.name,
      source: { kind: "trained", dataset: s.dataset, spec: tn.spec, recipe: s.teacherRecipe, scale, seed: 1 },
      testLimit: s.testLimit,
    });
    for (const seed of seeds) {
      const dataset = s.dataset as "mnist" | "cifar10";
      const synth = L.synth({
        teacher: t,
        method: "cake",
        seed,
        dataset,
        knobs: s.synth,
        batchesPerShard: s.batchesPerShard,
      });
      for (const st of s.students) {
        const method = `cake:${specLabel(tn.spec)}->${specLabel(st.spec)}`;
        L.cell({
          synth,
          student: st,
          recipe: s.student,
          hard: false,
          seed,
          group: tn.name,
          variant: st.name,
          label: `${tn.name} → ${st.name}`,
          testLimit: s.testLimit,
          record: { experiment, method, dataset: s.dataset, notes: [] },
        });
      }
    }
  }
}

/** The resolved spec of a CAKE notebook at `scale` (see the module doc). */
export async function cakeNotebookSpec<N extends CakeNotebook>(
  notebook: N,
  scale: Scale,
  ov: CakeNotebookOverrides = {},
): Promise<CakeSpec & { settings: CakeNotebookSettings[N] }> {
  const L = new Layout();
  const smoke = scale === "smoke";
  const seeds = ov.seeds ??
    (notebook === "20" ? (smoke ? [1] : [1, 2, 3]) : notebook === "23" ? (smoke ? [1, 2] : [1, 2, 3]) : [1]);
  if (ov.teacher !== undefined && !["21", "23"].includes(notebook)) {
    throw new RangeError(`notebook ${notebook} trains its own teachers; a teacher can be given to 21 and 23`);
  }
  let settings: Record<string, unknown>, note: string;
  if (notebook === "20") {
    const s = resolveSettings<TwoMoonsSettings>(
      TWO_MOONS_SETTINGS,
      scale,
      ov.settings as DeepPartial<TwoMoonsSettings>,
    );
    for (const seed of seeds) moonsCells(L, s, scale, seed, L.teacher(moonsTeacher(s, seed)), null);
    [settings, note] = [s as unknown as Record<string, unknown>, settingsNote(TWO_MOONS_SETTINGS, scale)];
  } else if (notebook === "21") {
    const s = resolveSettings<CakeImageSettings>(
      CAKE_IMAGE_SETTINGS,
      scale,
      ov.settings as DeepPartial<CakeImageSettings>,
    );
    const seed = seeds[0];
    for (const dataset of ov.datasets ?? ["mnist", "fmnist"]) {
      const source = await imageTeacher(ov.teacher, dataset, s, seed);
      const t = L.teacher({ name: `${dataset} ${s.teacherModel}`, source, testLimit: s.testLimit });
      for (const sd of seeds) {
        imageCell(L, t, s, dataset, sd, { name: "cake", label: "CAKE" }, "cake-mnist", "cake");
      }
    }
    [settings, note] = [s as unknown as Record<string, unknown>, settingsNote(CAKE_IMAGE_SETTINGS, scale)];
  } else if (notebook === "23") {
    const toy = resolveSettings<TwoMoonsSettings>(TWO_MOONS_SETTINGS, scale, ov.toySettings);
    const img = resolveSettings<CakeImageSettings>(
      CAKE_ABLATION_SETTINGS,
      scale,
      ov.settings as DeepPartial<CakeImageSettings>,
    );
    const moonVariants = checkVariants(ov.variants?.["two-moons"] ?? defaultAblations("two-moons"));
    for (const seed of seeds) {
      moonsCells(L, toy, scale, seed, L.teacher(moonsTeacher(toy, seed)), moonVariants);
    }
    const mnistVariants = checkVariants(ov.variants?.mnist ?? defaultAblations("mnist"));
    if (mnistVariants.length > 0) {
      const source = await imageTeacher(ov.teacher, "mnist", img, 1);
      const t = L.teacher({ name: `mnist ${img.teacherModel}`, source, testLimit: img.testLimit });
      for (const seed of seeds) {
        for (const name of mnistVariants) {
          const v = CAKE_ABLATIONS[name];
          const variant = { name, label: v.label, synth: v.synth, hard: v.hardTargets };
          imageCell(L, t, img, "mnist", seed, variant, "cake-ablation", `cake:${name}`);
        }
      }
    }
    settings = { twoMoons: toy, mnist: img };
    note = `two-moons: ${settingsNote(TWO_MOONS_SETTINGS, scale)}; MNIST: ${
      settingsNote(CAKE_ABLATION_SETTINGS, scale)
    }`;
  } else {
    const table = notebook === "22" ? CAKE_CIFAR_SETTINGS : CAKE_TYPE_SETTINGS;
    const s = resolveMatrixSettings(table, scale, ov.settings as DeepPartial<CakeMatrixSettings>);
    matrixLayout(L, s, scale, seeds, notebook === "22" ? "cake-cifar10" : "cake-across-models");
    [settings, note] = [s as unknown as Record<string, unknown>, settingsNote(table, scale)];
  }
  const spec: CakeSpec = {
    family: "cake",
    notebook,
    scale,
    seeds,
    settings,
    note,
    teachers: L.teachers,
    syntheses: L.syntheses,
    cells: L.cells,
  };
  return spec as CakeSpec & { settings: CakeNotebookSettings[N] };
}

/** Where a notebook's run store lives and how its units run. */
export interface CakeRunOptions {
  /**
   * true (default): the plan's store under `data/runs/`, whose finished units are reused; false: a
   * fresh store in a temporary folder (nothing reused); a string: that store folder.
   */
  cache?: CacheOption;
  executor?: LocalExecutor;
  /** Unit processes for the local executor. */
  workers?: number;
}

/** Run every unfinished unit of `spec` (see {@link CakeRunOptions}) and return its store. */
export async function runCakeSpec(spec: CakeSpec, opts: CakeRunOptions = {}): Promise<RunStore> {
  const plan = cakePlan(spec);
  const store = await storeRootOf(plan, opts.cache);
  return await runExperiment(plan, { store, executor: opts.executor, workers: opts.workers });
}

/** The run plan of a CAKE notebook (for the notebook registry and `runExperiment`). */
export async function cakeNotebookPlan(
  notebook: CakeNotebook,
  scale: Scale,
  overrides: CakeNotebookOverrides = {},
): Promise<RunPlan> {
  return cakePlan(await cakeNotebookSpec(notebook, scale, overrides));
}
