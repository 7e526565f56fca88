/**
 * CAKE synthesis throughput: samples × steps per second (one step = teacher forward + backward for
 * every sample of a batch, plus the local TV gradient and the SGD update), per backend.
 *
 *     deno run -A bench/cake.ts [--backends cpu,wasm] [--seconds 6] [--quick] [--resnet]
 *
 * Settings measured (paper batch layouts):
 * - two-moons: MLP 2→20→20→20→2 teacher, B = 100, G = 2 (no TV);
 * - LeNet-5: CAKE LeNet-5 teacher on 28×28×1, B = 500, G = 10, TV on (MNIST defaults);
 * - ResNet-18 (with --resnet): CIFAR-style ResNet-18 on 32×32×3, B = 100 (paper: 500), G = 10.
 * Plus the student side: soft-target training images/s of the matching student (MLP, LeNet-5-half).
 *
 * Each rate is the median over timed windows after a warm-up (other processes share the machine;
 * min–max is printed too). Untrained teachers: the cost of a step does not depend on the weights.
 */
import { type BackendName, initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { logitsGradOracle } from "../lib/oracle/oracle.ts";
import { type CakeDataset, resolveCakeOptions } from "../lib/cake/options.ts";
import { synthesizeBatch } from "../lib/cake/synthesize.ts";
import { train } from "../lib/train/trainer.ts";
import { Rng } from "../lib/util/rng.ts";

/** One benchmark configuration. */
interface Setting {
  label: string;
  teacher: ModelSpec;
  student: ModelSpec;
  dataset: CakeDataset;
  batchSize: number;
  groups: number;
}

const SETTINGS: Setting[] = [
  {
    label: "two-moons MLP",
    teacher: { name: "mlp", inputShape: [2], numClasses: 2, options: { hidden: 20, depth: 2 } },
    student: { name: "mlp", inputShape: [2], numClasses: 2, options: { hidden: 20, depth: 2 } },
    dataset: "two-moons",
    batchSize: 100,
    groups: 2,
  },
  {
    label: "LeNet-5 (MNIST)",
    teacher: { name: "cake-lenet5", inputShape: [28, 28, 1], numClasses: 10 },
    student: { name: "cake-lenet5-half", inputShape: [28, 28, 1], numClasses: 10 },
    dataset: "mnist",
    batchSize: 500,
    groups: 10,
  },
];

const RESNET: Setting = {
  label: "ResNet-18 (CIFAR-10)",
  teacher: { name: "resnet18", inputShape: [32, 32, 3], numClasses: 10 },
  student: { name: "resnet18", inputShape: [32, 32, 3], numClasses: 10 },
  dataset: "cifar10",
  batchSize: 100,
  groups: 10,
};

/** A rate: median and range over windows. */
interface Rate {
  median: number;
  min: number;
  max: number;
}

function rate(xs: number[]): Rate {
  const s = xs.slice().sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
}

/** Synthesis sample·steps/s for one setting on the current backend. */
async function synthRate(st: Setting, seconds: number): Promise<Rate> {
  const teacher = buildModel(st.teacher, 1);
  const oracle = logitsGradOracle(teacher);
  const base = resolveCakeOptions(
    { dataset: st.dataset, batchSize: st.batchSize, groups: st.groups, numBatches: 1, progress: false },
    st.dataset,
  );
  await synthesizeBatch(oracle, { ...base, steps: 1 }, 0, st.teacher.inputShape, st.teacher.numClasses); // warm-up
  // Steps per window so that a window lasts about seconds/4.
  const t0 = performance.now();
  await synthesizeBatch(oracle, { ...base, steps: 2 }, 0, st.teacher.inputShape, st.teacher.numClasses);
  const perStep = (performance.now() - t0) / 1000 / 3;
  const steps = Math.max(2, Math.round(seconds / 4 / perStep));
  const rates: number[] = [];
  for (let w = 0; w < 4; w++) {
    const t = performance.now();
    await synthesizeBatch(oracle, { ...base, steps }, w, st.teacher.inputShape, st.teacher.numClasses);
    rates.push((st.batchSize * steps) / ((performance.now() - t) / 1000));
  }
  teacher.dispose();
  return rate(rates);
}

/** Student training images/s (soft-target CE, SGD + one-cycle, one process). */
async function studentRate(st: Setting, seconds: number): Promise<number> {
  const dim = st.student.inputShape.reduce((a, b) => a * b, 1);
  const k = st.student.numClasses;
  const n = st.dataset === "two-moons" ? 4096 : 1024;
  const rng = new Rng(1);
  const x = rng.fillNormal(new Float32Array(n * dim));
  const targets = rng.fillNormal(new Float32Array(n * k));
  const batchSize = st.dataset === "two-moons" ? 256 : 128;
  const t0 = performance.now();
  const probe = await train(st.student, { x, shape: [n, ...st.student.inputShape], targets }, {
    epochs: 1,
    batchSize,
    seed: 1,
    loss: { kind: "soft-ce" },
    optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { kind: "onecycle" },
    workers: 1,
    label: "bench student",
  });
  probe.model.dispose();
  const perEpoch = (performance.now() - t0) / 1000;
  const epochs = Math.max(1, Math.min(20, Math.round(seconds / Math.max(perEpoch, 1e-3))));
  const r = await train(st.student, { x, shape: [n, ...st.student.inputShape], targets }, {
    epochs,
    batchSize,
    seed: 2,
    loss: { kind: "soft-ce" },
    optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { kind: "onecycle" },
    workers: 1,
    label: "bench student",
  });
  r.model.dispose();
  return r.imagesPerSec;
}

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const fmt = (v: number) => Math.round(v).toLocaleString("en-US");

if (import.meta.main) {
  const backends = (arg("backends") ?? "wasm").split(",") as BackendName[];
  const quick = Deno.args.includes("--quick");
  const seconds = Number(arg("seconds") ?? (quick ? 2 : 6));
  const settings = Deno.args.includes("--resnet") ? [...SETTINGS, RESNET] : SETTINGS;
  console.log("| backend | setting | B | synthesis sample·steps/s (median, min–max) | student train img/s |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const b of backends) {
    const info = await initBackend(b);
    for (const st of settings) {
      const r = await synthRate(st, seconds);
      const s = await studentRate(st, seconds);
      console.log(
        `| ${info.name} | ${st.label} | ${st.batchSize} | ${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)}) | ${
          fmt(s)
        } |`,
      );
    }
  }
}
