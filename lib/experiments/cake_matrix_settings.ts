/**
 * The settings tables of notebooks 22 (CIFAR-10 ResNets) and 24 (MNIST model types): a teacher set ×
 * student set, `paper` as the base (the reference configuration) and laptop/smoke overrides with
 * their reasons. Rates measured on the shared 2 cores decided the laptop sizes.
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import type { OptimizerConfig } from "../learn/optim.ts";
import type { Scale } from "../scale.ts";
import { type DeepPartial, resolveSettings, type SettingsTable } from "./settings.ts";
import { CAKE_STUDENT, type StudentRecipe } from "../cake/student.ts";
import type { SpecTeacherRecipe } from "../train/spec_teachers.ts";
import { type NamedSpec, paperSynth, type SynthKnobs } from "./cake_settings.ts";

/** A teacher-set × student-set experiment. */
export interface CakeMatrixSettings {
  dataset: DatasetName;
  teachers: NamedSpec[];
  students: NamedSpec[];
  /** Replaced whole by an override (optimizers and schedules are tagged unions). */
  teacherRecipe: SpecTeacherRecipe;
  synth: SynthKnobs;
  student: StudentRecipe;
  testLimit: number | null;
  batchesPerShard: number;
}

const adam = (lr: number): OptimizerConfig => ({ kind: "adam", lr });
const rn = (depth: number, width: number): NamedSpec => ({
  name: `ResNet-${depth}`,
  spec: { name: "resnet", options: { depth, width } },
});
const SMOKE_TEACHER = (trainLimit: number): SpecTeacherRecipe => ({
  epochs: 1,
  batchSize: 64,
  optimizer: adam(1e-3),
  schedule: { kind: "constant" },
  trainLimit,
  testLimit: 200,
  workers: 1,
});

/** Settings table of notebook 22 (CIFAR-10 ResNets). */
export const CAKE_CIFAR_SETTINGS: SettingsTable<CakeMatrixSettings> = {
  paper: {
    base: {
      dataset: "cifar10",
      teachers: [{ name: "ResNet-34", spec: { name: "resnet34" } }],
      students: [{ name: "ResNet-18", spec: { name: "resnet18" } }],
      teacherRecipe: {
        epochs: 200,
        batchSize: 128,
        optimizer: { kind: "sgd", lr: 0.5, momentum: 0.9, weightDecay: 5e-4 },
        schedule: { kind: "onecycle" },
      },
      synth: paperSynth("cifar10"),
      student: CAKE_STUDENT.other,
      testLimit: null,
      batchesPerShard: 10,
    },
    note: "paper settings: ResNet-34 → ResNet-18, CIFAR-10 defaults of the reference config",
  },
  laptop: {
    override: {
      teachers: [rn(8, 8)],
      students: [rn(8, 8), rn(4, 8)],
      teacherRecipe: {
        epochs: 8,
        batchSize: 64,
        optimizer: adam(2e-3),
        schedule: { kind: "step", milestones: [6], gamma: 0.1 },
      },
      synth: { numBatches: 4, steps: 8 },
      student: { epochs: 15 },
      batchesPerShard: 4,
    },
    note: "laptop: ResNet-8 teacher → ResNet-8 / ResNet-4 students, all width 8, on the offline subset " +
      "(full set with BKD_CIFAR10_DIR); 2,000 synthetic samples × 8 steps (paper: R34 → R18, width 64, " +
      "250,000 × 256). Measured on 2 shared cores: ResNet-8 at width 16 trains at ≈ 38 images/s, so even " +
      "that is out of reach here, and ResNet-18 (width 64) more so",
  },
  smoke: {
    override: {
      teachers: [rn(4, 8)],
      students: [rn(4, 8)],
      teacherRecipe: SMOKE_TEACHER(256),
      synth: { numBatches: 2, batchSize: 10, steps: 2 },
      student: { epochs: 1, batchSize: 16, workers: 1 },
      testLimit: 200,
      batchesPerShard: 1,
    },
    note: "smoke: pipeline check (ResNet-4 width 8, 256 training images, 20 synthetic samples × 2 steps)",
  },
};

const types = (scale: Scale): NamedSpec[] => {
  const smoke = scale === "smoke";
  return [
    {
      name: "MLP",
      spec: { name: "mlp", options: smoke ? { hidden: 32, depth: 1 } : { hidden: 100, depth: 4 } },
    },
    { name: "CNN", spec: { name: "cake-cnn" } },
    {
      name: "ResNet",
      spec: scale === "paper"
        ? { name: "resnet18" }
        : { name: "resnet", options: smoke ? { depth: 4, width: 8 } : { depth: 8, width: 8 } },
    },
    {
      name: "ViT",
      spec: scale === "paper" ? { name: "vit8" } : {
        name: "vit4",
        options: smoke
          ? { depth: 1, dim: 16, heads: 2, headDim: 8, mlpDim: 16 }
          : { depth: 2, heads: 4, headDim: 16 },
      },
    },
  ];
};

/** Settings table of notebook 24 (MNIST model types). */
export const CAKE_TYPE_SETTINGS: SettingsTable<CakeMatrixSettings> = {
  paper: {
    base: {
      dataset: "mnist",
      teachers: types("paper"),
      students: types("paper"),
      teacherRecipe: {
        epochs: 10,
        batchSize: 128,
        optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
        schedule: { kind: "onecycle" },
      },
      synth: paperSynth("mnist"),
      student: CAKE_STUDENT.mnistLike,
      testLimit: null,
      batchesPerShard: 16,
    },
    note: "paper settings: MNIST defaults of the reference config",
  },
  laptop: {
    override: {
      teachers: types("laptop"),
      students: types("laptop"),
      teacherRecipe: {
        epochs: 2,
        batchSize: 32,
        optimizer: adam(1e-3),
        schedule: { kind: "constant" },
        trainLimit: 5000,
      },
      synth: { numBatches: 8, batchSize: 250, steps: 8 },
      student: { epochs: 4, batchSize: 64 },
      testLimit: 500,
      batchesPerShard: 8,
    },
    note:
      "laptop: teachers on 5,000 images × 2 epochs; ResNet depth 8 width 8, ViT depth 2 (4 heads × 16); " +
      "2,000 synthetic samples (8 batches × 250) × 8 steps per teacher; students 4 epochs (batch 64); 500 " +
      "test images (paper: ResNet-18, ViT-8, full synthesis). Measured rates on the shared 2 cores: " +
      "CNN ≈ 60 images/s, ResNet-8 ≈ 110, ViT ≈ 150, MLP ≈ 1,000",
  },
  smoke: {
    override: {
      teachers: types("smoke"),
      students: types("smoke"),
      teacherRecipe: SMOKE_TEACHER(512),
      synth: { numBatches: 1, batchSize: 20, steps: 2 },
      student: { epochs: 1, batchSize: 16, workers: 1 },
      testLimit: 200,
      batchesPerShard: 1,
    },
    note: "smoke: tiny networks, 512 training images × 1 epoch, 20 synthetic samples × 2 steps",
  },
};

/**
 * {@link resolveSettings} for a matrix table: an override's `teacherRecipe` replaces the base's whole
 * (a merged Adam-over-SGD optimizer would keep SGD's momentum).
 */
export function resolveMatrixSettings(
  table: SettingsTable<CakeMatrixSettings>,
  scale: Scale,
  extra?: DeepPartial<CakeMatrixSettings>,
): CakeMatrixSettings {
  const pick = (o?: DeepPartial<CakeMatrixSettings>) => {
    const { teacherRecipe, ...rest } = o ?? {};
    return { teacherRecipe: teacherRecipe as SpecTeacherRecipe | undefined, rest };
  };
  const sc = scale === "paper" ? pick() : pick(table[scale].override);
  const ex = pick(extra);
  const t: SettingsTable<CakeMatrixSettings> = {
    ...table,
    laptop: { ...table.laptop, override: scale === "laptop" ? sc.rest : {} },
    smoke: { ...table.smoke, override: scale === "smoke" ? sc.rest : {} },
  };
  const s = resolveSettings<CakeMatrixSettings>(t, scale, ex.rest as DeepPartial<CakeMatrixSettings>);
  return { ...s, teacherRecipe: ex.teacherRecipe ?? sc.teacherRecipe ?? s.teacherRecipe };
}
