/**
 * The "db3" experiment as data (notebooks 10/11/12): teacher → class-balanced transfer set → SD, BD
 * and MBD distances (BD in the same labeling shards as a `db3-label` run, MBD refining them in shards
 * of its own) → soft labels → one student per method and seed, beside the label-only CE student and
 * the standard-KD student (probs access) on the same images.
 *
 * One settings table per dataset family (LeNet-5 on MNIST/Fashion-MNIST, AlexNet on CIFAR-10), with
 * `paper` as the base (the reference settings of algorithms.md) and `laptop`/`smoke` as overrides,
 * each with its reason. The scale is resolved here, once.
 *
 * @module
 */
import { BD_DEFAULTS, type BdOptions } from "../db3/bd.ts";
import { MBD_DEFAULTS, type MbdOptions } from "../db3/mbd.ts";
import { SD_DEFAULTS, type SdOptions } from "../db3/sd.ts";
import type { SoftLabelOptions } from "../db3/soft_labels.ts";
import type { DatasetName } from "../data/types.ts";
import type { ModelName } from "../models/registry.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";
import type { Scale } from "../scale.ts";
import type { Db3LabelTeacher } from "./db3_label_spec.ts";
import { type DeepPartial, resolveSettings, type SettingsTable } from "./settings.ts";

/** Rows of the DB3 table. */
export type Db3TableMethod = "ce" | "kd" | "sd" | "bd" | "mbd";

/** All student rows, in table order. */
export const DB3_TABLE_METHODS: readonly Db3TableMethod[] = ["ce", "kd", "sd", "bd", "mbd"];

/** MBD options a run sets (its seed is the run's labeling seed; unset fields: the reference defaults). */
export type Db3Mbd = Omit<MbdOptions, "bd" | "lockstep" | "seed">;

/** What a DB3 run's numbers depend on, at one scale. */
export interface Db3Config {
  /** Transfer-set images per class (0: the whole training set, in order). */
  samplesPerClass: number;
  /** Test images used for accuracy (0: all). */
  testLimit: number;
  /** SD (sample distance) options (unset fields: the reference defaults). */
  sd: SdOptions;
  /** BD (boundary distance) options (unset fields: the reference defaults). */
  bd: Omit<BdOptions, "lockstep">;
  /** MBD (minimal boundary distance) options. */
  mbd: Db3Mbd;
  student: {
    model: ModelName;
    epochs: number;
    batchSize: number;
    lr: number;
    /** τ of the kd-db3 loss. */
    temperature: number;
    /**
     * Test images scored after every epoch for the best-epoch number (the first ones of the test set;
     * null: all, 0: none). The reported final accuracy is always scored on the whole test set.
     */
    epochTestLimit?: number | null;
  };
  /** Samples per labeling unit (BD shards, MBD shards). */
  chunk: { bd: number; mbd: number };
}

/** A scale's settings with the note saying what differs from the paper (the shape notebooks show). */
export type Db3Settings = Db3Config & { note: string };

/** Dataset family of the settings: LeNet-5 teachers on 28×28 images, AlexNet on CIFAR-10. */
export type Db3Arch = "lenet" | "alexnet";

/** The dataset family of `dataset`. */
export function db3ArchOf(dataset: DatasetName): Db3Arch {
  return dataset === "cifar10" ? "alexnet" : "lenet";
}

function paperBase(model: ModelName, lr: number): Db3Config {
  return {
    samplesPerClass: 0,
    testLimit: 0,
    sd: { ...SD_DEFAULTS },
    bd: { ...BD_DEFAULTS },
    mbd: (({ seed: _seed, ...m }) => m)({ ...MBD_DEFAULTS, snapshotAt: [...MBD_DEFAULTS.snapshotAt] }),
    student: { model, epochs: 200, batchSize: 512, lr, temperature: 20, epochTestLimit: null },
    // 1,000 samples per BD unit, as a db3-label run (≈ 1.5 CPU-min each), so its shards serve here.
    chunk: { bd: 1000, mbd: 20 },
  };
}

/** The settings tables (see the module doc); the notes are what notebooks print. */
export const DB3_SETTINGS: Record<Db3Arch, SettingsTable<Db3Config>> = {
  lenet: {
    paper: { base: paperBase("db3-lenet5-half", 1e-3), note: "reference settings" },
    laptop: {
      override: {
        samplesPerClass: 40,
        mbd: { queryLimit: 2000, snapshotAt: [500, 1000, 1500, 2000] },
        student: { batchSize: 64, epochTestLimit: 1000 },
        chunk: { bd: 100 },
      },
      note: "400 images (40/class); MBD query limit 2,000 per (sample, class) instead of 20,000; student " +
        "batch 64 instead of 512; best-epoch accuracy on the first 1,000 test images (final: all 10,000)",
    },
    smoke: {
      override: {
        samplesPerClass: 1,
        testLimit: 500,
        bd: { candidates: 11 },
        mbd: { kGrad: 10, queryLimit: 200, snapshotAt: [100, 200] },
        student: { epochs: 2, batchSize: 16 },
        chunk: { bd: 20 },
      },
      note:
        "pipeline check: 10 images, BD 11 candidates, MBD K=10 and 200 queries per (sample, class), 2 epochs",
    },
  },
  alexnet: {
    paper: { base: paperBase("db3-alexnet-half", 5e-3), note: "reference settings" },
    laptop: {
      override: {
        samplesPerClass: 10,
        bd: { candidates: 51 },
        mbd: { kGrad: 50, queryLimit: 400, snapshotAt: [200, 400] },
        student: { batchSize: 32, epochTestLimit: 0 },
        chunk: { bd: 50, mbd: 10 },
      },
      note:
        "100 images (10/class); BD 51 candidates instead of 201; MBD K=50 directions and 400 queries per " +
        "(sample, class) instead of 200 and 20,000; student batch 32 instead of 512, test set scored after the " +
        "last epoch only (AlexNet answers ~1/16 as many label queries per second as LeNet-5)",
    },
    smoke: {
      override: {
        samplesPerClass: 1,
        testLimit: 200,
        bd: { candidates: 11 },
        mbd: { kGrad: 10, queryLimit: 200, snapshotAt: [100, 200] },
        student: { epochs: 2, batchSize: 16 },
        chunk: { bd: 20 },
      },
      note:
        "pipeline check: 10 images, BD 11 candidates, MBD K=10 and 200 queries per (sample, class), 2 epochs",
    },
  },
};

/** Settings of `scale` for `dataset`, with their note (`extra` laid on top, checked for unknown keys). */
export function db3Settings(scale: Scale, dataset: DatasetName, extra?: DeepPartial<Db3Config>): Db3Settings {
  const table = DB3_SETTINGS[db3ArchOf(dataset)];
  return { ...resolveSettings<Db3Config>(table, scale, extra), note: table[scale].note };
}

/** The resolved spec of one db3 run (plain JSON, saved in the run store). */
export interface Db3Spec {
  family: "db3";
  /** Metadata only: the settings below are already resolved for it. */
  scale: Scale;
  dataset: DatasetName;
  /** Teacher source without any token (an HTTP teacher's token comes from `BKD_TEACHER_TOKEN`). */
  teacher: Db3LabelTeacher;
  /** Seed of the transfer set, the class streams and MBD's directions. */
  labelSeed: number;
  /** Student seeds: one student per method and seed. */
  seeds: number[];
  methods: Db3TableMethod[];
  engine: TeacherEngine;
  settings: Db3Settings;
  /** Soft-label remedy for the 1/d blow-up (default none, as the reference). */
  softLabels: Omit<SoftLabelOptions, "teacherLabels" | "exhausted">;
  /** Experiment name of the run records (default `db3-<dataset>`). */
  experiment: string;
}

/** Images in each dataset's training split (the transfer set at `samplesPerClass` 0). */
export const TRAIN_IMAGES: Record<DatasetName, number> = { mnist: 60000, fmnist: 60000, cifar10: 50000 };

/** Transfer-set size of a spec (10 classes in every dataset here). */
export function transferSize(spec: Db3Spec): number {
  const spc = spec.settings.samplesPerClass;
  return spc > 0 ? spc * 10 : TRAIN_IMAGES[spec.dataset];
}
