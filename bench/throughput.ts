/**
 * Training and inference throughput of the kit's networks on each backend, single process.
 *
 *     deno run -A bench/throughput.ts [--backends cpu,wasm] [--quick] [--seconds 4]
 *
 * Prints a markdown table: backend, model, batch, train images/s (Adam step on softmax cross-entropy),
 * infer images/s (one forward pass over the batch + argmax, labels read back), single-process. Each
 * figure is the median over timed windows after a warm-up, with the range (min–max over windows).
 * On a shared machine wall-clock rates drop with other load, so images per CPU-second of this
 * process (best window) are printed as well: that is what one unshared core does.
 *
 * Hook for multi-worker numbers: pass `workers` to {@link runThroughputBench} (a function measuring the
 * same model/batch with a worker pool); its results become extra columns of the same table.
 */
import * as tf from "@tensorflow/tfjs-core";
import process from "node:process";
import type * as tfl from "@tensorflow/tfjs-layers";
import { type BackendName, initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";

/** One measured configuration. Rates are images/s: median and [min, max] over timed windows. */
export interface ThroughputRow {
  backend: BackendName;
  model: string;
  batch: number;
  train?: Rate;
  infer?: Rate;
  /** Filled by a `workers` measurer, if given. */
  workers?: { count: number; train?: number; infer?: number };
  note?: string;
}

/** A throughput measurement: median and range over windows, and images per CPU-second of this process. */
export interface Rate {
  median: number;
  min: number;
  max: number;
  /** Images per second of this process's CPU time (user + system): what one core does when unshared. */
  perCpuSecond: number;
}

/** Measures the same model and batch with several workers (provided by lib/parallel's owner). */
export type WorkersMeasure = (
  spec: ModelSpec,
  batch: number,
  seconds: number,
) => Promise<{ count: number; train?: number; infer?: number }>;

/** What to run. */
export interface BenchOptions {
  backends: BackendName[];
  quick: boolean;
  /** Seconds of timed work per measurement (split into windows). */
  seconds: number;
  workers?: WorkersMeasure;
  /** Called after each row (for live output). */
  onRow?: (row: ThroughputRow) => void;
}

/** The two benchmark networks (DB3's MNIST LeNet-5 and CIFAR AlexNet-half) and their batch sizes. */
export const BENCH_MODELS: { spec: ModelSpec; label: string; batches: number[]; quickBatches: number[] }[] = [
  {
    spec: { name: "db3-lenet5", inputShape: [28, 28, 1], numClasses: 10 },
    label: "DB3 LeNet-5",
    batches: [128, 256, 512],
    quickBatches: [256],
  },
  {
    spec: { name: "db3-alexnet-half", inputShape: [32, 32, 3], numClasses: 10 },
    label: "DB3 AlexNet-half",
    batches: [32, 64, 128],
    quickBatches: [64],
  },
];

/** Repeat `step` (which processes `batch` images) in ~`seconds` of windows; images/s per window. */
function rate(step: () => void, batch: number, seconds: number): Rate {
  step(); // warm-up: kernels set up, operators cached
  const t0 = performance.now();
  step();
  const one = (performance.now() - t0) / 1000;
  // Very slow steps (the cpu backend) get a single timed window.
  const windows = one > seconds ? 1 : Math.max(3, Math.min(9, Math.floor(seconds / Math.max(one, 0.05))));
  const perWindow = Math.max(1, Math.round(seconds / windows / one));
  const rates: number[] = [];
  let bestCpu = 0;
  for (let w = 0; w < windows; w++) {
    const s = performance.now(), c = process.cpuUsage();
    for (let i = 0; i < perWindow; i++) step();
    const cpu = process.cpuUsage(c);
    rates.push((perWindow * batch) / ((performance.now() - s) / 1000));
    bestCpu = Math.max(bestCpu, (perWindow * batch) / ((cpu.user + cpu.system) / 1e6));
  }
  rates.sort((a, b) => a - b);
  return {
    median: rates[rates.length >> 1],
    min: rates[0],
    max: rates[rates.length - 1],
    perCpuSecond: bestCpu,
  };
}

/** Single-process train and infer throughput of `spec` at `batch` on the current backend. */
export function measureSingleProcess(
  spec: ModelSpec,
  batch: number,
  seconds: number,
  what: { train: boolean; infer: boolean } = { train: true, infer: true },
): { train?: Rate; infer?: Rate } {
  const model: tfl.LayersModel = buildModel(spec, 1);
  const x = tf.randomUniform([batch, ...spec.inputShape], 0, 1, "float32", 3);
  const y = tf.oneHot(tf.randomUniform([batch], 0, spec.numClasses, "int32", 4), spec.numClasses);
  const out: { train?: Rate; infer?: Rate } = {};
  if (what.train) {
    const opt = tf.train.adam(1e-3);
    out.train = rate(
      () => {
        const loss = opt.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          true,
        );
        loss?.dataSync();
        loss?.dispose();
      },
      batch,
      seconds,
    );
    opt.dispose();
  }
  if (what.infer) {
    out.infer = rate(
      () => {
        // One forward pass over the whole batch (predict's default splits it into batches of 32).
        const labels = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: batch }) as tf.Tensor, 1));
        labels.dataSync();
        labels.dispose();
      },
      batch,
      seconds,
    );
  }
  tf.dispose([x, y]);
  model.dispose();
  return out;
}

/** Run the whole benchmark; rows in table order. */
export async function runThroughputBench(opts: BenchOptions): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const backend of opts.backends) {
    const info = await initBackend(backend);
    if (info.name !== backend) throw new Error(`asked for ${backend}, got ${info.name}`);
    for (const m of BENCH_MODELS) {
      // The cpu backend needs over a minute per LeNet step at batch 256: quick runs use batch 32 there.
      const batches = opts.quick ? (backend === "cpu" ? [32] : m.quickBatches) : m.batches;
      for (const batch of batches) {
        const row: ThroughputRow = { backend, model: m.label, batch };
        // The cpu backend's convolution gradients are naive loops: an AlexNet step takes minutes.
        const skipTrain = backend === "cpu" && m.spec.name.includes("alexnet");
        if (skipTrain) row.note = "cpu train skipped (minutes per step)";
        const seconds = backend === "cpu" ? Math.min(opts.seconds, 2) : opts.seconds;
        Object.assign(row, measureSingleProcess(m.spec, batch, seconds, { train: !skipTrain, infer: true }));
        if (opts.workers) row.workers = await opts.workers(m.spec, batch, seconds);
        rows.push(row);
        opts.onRow?.(row);
      }
    }
  }
  return rows;
}

function fmtRate(r: Rate | undefined): string {
  if (!r) return "—";
  const f = (v: number) => v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toPrecision(2);
  return `${f(r.median)} (${f(r.min)}–${f(r.max)})`;
}

/** Markdown table of the rows (workers columns only when some row has them). */
export function renderTable(rows: ThroughputRow[]): string {
  const withWorkers = rows.some((r) => r.workers);
  const head = [
    "backend",
    "model",
    "batch",
    "train img/s",
    "infer img/s",
    "mode",
    "train img/cpu-s",
    "infer img/cpu-s",
  ];
  if (withWorkers) head.push("workers", "train img/s (workers)", "infer img/s (workers)");
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) {
    const perCpu = (v: Rate | undefined) => v ? Math.round(v.perCpuSecond).toLocaleString("en-US") : "—";
    const cells = [
      r.backend,
      r.model,
      String(r.batch),
      fmtRate(r.train),
      fmtRate(r.infer),
      "single-process",
      perCpu(r.train),
      perCpu(r.infer),
    ];
    if (withWorkers) {
      const w = r.workers;
      cells.push(
        w ? String(w.count) : "—",
        w?.train ? Math.round(w.train).toLocaleString("en-US") : "—",
        w?.infer ? Math.round(w.infer).toLocaleString("en-US") : "—",
      );
    }
    if (r.note) cells[5] += ` (${r.note})`;
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function parseArgs(args: string[]): BenchOptions {
  let backends: BackendName[] = ["wasm"];
  let quick = false, seconds = 4;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") quick = true;
    else if (a === "--backends") backends = args[++i].split(",") as BackendName[];
    else if (a.startsWith("--backends=")) backends = a.slice(11).split(",") as BackendName[];
    else if (a === "--seconds") seconds = Number(args[++i]);
    else {throw new Error(
        `unknown argument ${a}; usage: throughput.ts [--backends cpu,wasm] [--quick] [--seconds s]`,
      );}
  }
  for (const b of backends) {
    if (b !== "cpu" && b !== "wasm" && b !== "tensorflow") throw new Error(`unknown backend ${b}`);
  }
  return { backends, quick, seconds: quick ? Math.min(seconds, 1.5) : seconds };
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  opts.onRow = (r) => console.error(`done: ${r.backend} ${r.model} batch ${r.batch}`);
  const rows = await runThroughputBench(opts);
  console.log(renderTable(rows));
}
