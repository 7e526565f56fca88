/**
 * The kit beside PyTorch on the CPU, for every row of issue 12's table, in one run on the same cores.
 *
 *     deno task bench:train [--seconds 5] [--only alexnet,lenet5_train,...] [--no-torch] [--json]
 *
 * `--only` keeps the workloads whose id contains one of the comma-separated words (`--only alexnet`: every
 * AlexNet row).
 *
 * PyTorch: bench/pytorch_baseline.py with 2 threads (run when `/usr/bin/python3 -c "import torch"` works;
 * install with `apt-get install -y python3-torch libopenblas0-pthread`). The kit: its current path for each
 * workload (DB3 LeNet-5 training: `train(...)` end to end on the engine it picks, native unless unavailable,
 * beside `train(...)` forced onto the wasm pool and the bare native gradient kernel; DB3 AlexNet-half
 * training: `train(...)` end to end (native, lib/native/seq_train.ts) beside one wasm process; ResNet-18
 * training: the native step (gradients + optimizerStep) beside the wasm worker pool; the native forward
 * engine for the label queries it supports and the training engine in inference mode for the others (ResNets),
 * the `logits+grad` oracle on the engine it picks — native unless unavailable — for CAKE input gradients).
 * Each kit workload runs in its own subprocess with a time limit, so a wasm crash or abort becomes a row that
 * says so instead of ending the benchmark. Rates are wall clock after a warm-up step; the 1-minute load average is printed
 * beside every figure because the machine may be shared. Prints one markdown table:
 * workload | PyTorch | kit | ratio | target.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { fileURLToPath } from "node:url";
import { initBackend } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { leNetDims, NativeLeNetGrads, nativeLossWeights } from "../lib/native/lenet_grads.ts";
import { NativeSeqTrainer } from "../lib/native/seq_train.ts";
import { NativeFrozenNet } from "../lib/native/frozen_net.ts";
import { NativePredictor } from "../lib/native/predictor.ts";
import { logitsGradOracle } from "../lib/oracle/oracle.ts";
import { ModelPool } from "../lib/parallel/pool.ts";
import { gatherBatch, Replica } from "../lib/parallel/replica.ts";
import { createOptimizerState, type OptimizerConfig, optimizerStep } from "../lib/learn/optim.ts";
import { Rng } from "../lib/util/rng.ts";
import type { TrainEngineChoice } from "../lib/train/engine.ts";
import { train } from "../lib/train/trainer.ts";

/** One row of the table: the workload id shared with pytorch_baseline.py, and the issue's target ratio. */
interface Workload {
  id: string;
  what: string;
  batch: number;
  unit: string;
  /** Required kit/PyTorch ratio (issue 12, "Must show"). */
  target: number;
  /** The PyTorch workload it is compared with, when not `id` (kit variants of one row). */
  torchId?: string;
}

const WORKLOADS: Workload[] = [
  ...[128, 512].flatMap((batch) => [
    {
      id: `lenet5_train_adam_${batch}`,
      what: "DB3 LeNet-5 training, Adam — the trainer, train(...) end to end (engine auto)",
      batch,
      unit: "images/s",
      target: 1.5,
    },
    {
      id: `lenet5_train_adam_${batch}_wasm`,
      what: "DB3 LeNet-5 training, Adam — the trainer forced onto wasm (engine wasm, 2 workers)",
      batch,
      unit: "images/s",
      target: 1.5,
      torchId: `lenet5_train_adam_${batch}`,
    },
    {
      id: `lenet5_train_adam_${batch}_native`,
      what: "DB3 LeNet-5 training, Adam — native gradient kernel + optimizerStep only (no trainer)",
      batch,
      unit: "images/s",
      target: 1.5,
      torchId: `lenet5_train_adam_${batch}`,
    },
  ]),
  ...[128, 512].flatMap((batch) => [
    {
      id: `alexnet_half_train_adam_${batch}`,
      what: "DB3 AlexNet-half training, Adam — the trainer, train(...) end to end (engine auto)",
      batch,
      unit: "images/s",
      target: 1.0,
    },
    {
      id: `alexnet_half_train_adam_${batch}_wasm`,
      what: "DB3 AlexNet-half training, Adam — one wasm process (the path before the native engine)",
      batch,
      unit: "images/s",
      target: 1.0,
      torchId: `alexnet_half_train_adam_${batch}`,
    },
  ]),
  { id: "lenet5_labels_1024", what: "DB3 LeNet-5 label queries", batch: 1024, unit: "labels/s", target: 1.5 },
  {
    id: "alexnet_half_labels_1024",
    what: "DB3 AlexNet-half label queries",
    batch: 1024,
    unit: "labels/s",
    target: 1.5,
  },
  {
    id: "resnet18_labels_1024",
    what: "CIFAR ResNet-18 label queries",
    batch: 1024,
    unit: "labels/s",
    target: 1.5,
  },
  {
    id: "resnet18_train_sgd_128",
    what: "CIFAR ResNet-18 training, SGD — native gradients + optimizerStep (the trainer's native step)",
    batch: 128,
    unit: "images/s",
    target: 1.0,
  },
  {
    id: "resnet18_train_sgd_128_wasm",
    what: "CIFAR ResNet-18 training, SGD — wasm pool, 2 workers (the path before the native engine)",
    batch: 128,
    unit: "images/s",
    target: 1.0,
    torchId: "resnet18_train_sgd_128",
  },
  {
    id: "resnet18_input_grad_100",
    what: "CIFAR ResNet-18 input-gradient steps (CAKE)",
    batch: 100,
    unit: "samples/s",
    target: 1.0,
  },
];

const LENET: ModelSpec = { name: "db3-lenet5", inputShape: [28, 28, 1], numClasses: 10 };
const ALEXNET: ModelSpec = { name: "db3-alexnet-half", inputShape: [32, 32, 3], numClasses: 10 };
const RESNET: ModelSpec = { name: "resnet18", inputShape: [32, 32, 3], numClasses: 10 };
const ADAM: OptimizerConfig = { kind: "adam", lr: 1e-3 };
const SGD: OptimizerConfig = { kind: "sgd", lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };

/** A measured figure (or why there is none). */
interface Figure {
  rate?: number;
  /** How the kit ran it, e.g. "wasm, 2 workers". */
  engine?: string;
  iters?: number;
  load: string;
  note?: string;
}

const args = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const seconds = Number(opt("seconds", "5"));

/** 1-minute load average ("?" where unreadable). */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
}

/**
 * Warm up once, then repeat `step` until `seconds` passed and at least 2 steps ran; units/s. A step whose
 * warm-up alone took more than 3·`seconds` is timed once more and that single step is the figure.
 */
async function timed(units: number, step: () => Promise<unknown> | unknown): Promise<Figure> {
  const w0 = performance.now();
  await step();
  const load = loadAverage();
  if ((performance.now() - w0) / 1000 > 3 * seconds) {
    const t1 = performance.now();
    await step();
    return { rate: units / ((performance.now() - t1) / 1000), iters: 1, load };
  }
  let iters = 0, dt = 0;
  const t0 = performance.now();
  while (iters < 2 || dt < seconds) {
    await step();
    iters++;
    dt = (performance.now() - t0) / 1000;
  }
  return { rate: (units * iters) / dt, iters, load };
}

/** Synthetic data for `spec`: uniform pixels, random labels (the cost of a step does not depend on them). */
function synthetic(spec: ModelSpec, n: number) {
  const rng = new Rng(1);
  const dim = spec.inputShape.reduce((a, b) => a * b, 1);
  return {
    x: rng.fillUniform(new Float32Array(n * dim)),
    shape: [n, ...spec.inputShape],
    y: Int32Array.from({ length: n }, () => rng.int(spec.numClasses)),
    rng,
  };
}

/** Training with the worker pool (the trainer's default path), `workers` wasm workers. */
async function poolTrain(
  spec: ModelSpec,
  batch: number,
  o: OptimizerConfig,
  workers: number,
): Promise<Figure> {
  const d = synthetic(spec, batch * 4);
  const pool = await ModelPool.create(spec, undefined, { workers, backend: "wasm", seed: 1 });
  try {
    await pool.setTrainData({ x: d.x, shape: d.shape, y: d.y });
    await pool.configureTraining({ kind: "ce" }, o);
    const batches = Array.from(
      { length: 4 },
      (_, i) => Int32Array.from({ length: batch }, (_, j) => i * batch + j),
    );
    let s = 0;
    const f = await timed(batch, () => pool.trainStep(batches[s++ % 4], { lr: o.lr }));
    return { ...f, engine: `wasm, ${workers} workers` };
  } finally {
    pool.close();
  }
}

/**
 * The trainer's real path: `train(...)` end to end (batch gathering, loss, gradients, optimizer, progress)
 * on synthetic data of 8 batches, once as a warm-up (engine build, first-call costs), then for enough
 * epochs to fill `seconds`; the figure is the trainer's own images/s over those epochs.
 */
async function trainerTrain(
  spec: ModelSpec,
  batch: number,
  o: OptimizerConfig,
  engine: TrainEngineChoice,
  workers: number | "auto",
): Promise<Figure> {
  const d = synthetic(spec, batch * 8);
  const data = { x: d.x, shape: d.shape, y: d.y };
  const cfg = { batchSize: batch, seed: 1, loss: { kind: "ce" } as const, optimizer: o, engine, workers };
  const warm = await train(spec, data, { ...cfg, epochs: 1, label: "bench warm-up" });
  warm.model.dispose();
  const epochs = Math.max(2, Math.ceil((seconds * warm.imagesPerSec) / (batch * 8)));
  const load = loadAverage();
  const r = await train(spec, data, { ...cfg, epochs, label: "bench" });
  r.model.dispose();
  const u = r.trainEngine;
  return {
    rate: r.imagesPerSec,
    iters: epochs * 8,
    load,
    engine: `train(...), ${u.engine} engine (${u.threads} ${u.engine === "native" ? "threads" : "workers"})` +
      (u.nativeUnavailable ? `; native unavailable: ${u.nativeUnavailable.slice(0, 80)}` : ""),
  };
}

/** Training in this process (one wasm replica). */
async function replicaTrain(spec: ModelSpec, batch: number, o: OptimizerConfig): Promise<Figure> {
  const d = synthetic(spec, batch);
  const model = buildModel(spec, 1);
  const r = new Replica(model);
  r.configure({ kind: "ce" }, o);
  const idx = Int32Array.from({ length: batch }, (_, i) => i);
  const f = await timed(batch, () => r.apply(r.gradients(gatherBatch(d, idx), batch).grads, { lr: o.lr }));
  model.dispose();
  return { ...f, engine: "wasm, one process" };
}

/**
 * Label queries: the native forward engine when it supports the model, else the native training engine in
 * inference mode (residual nets: ResNets), else one wasm process.
 */
async function labels(spec: ModelSpec, batch: number): Promise<Figure> {
  const d = synthetic(spec, batch);
  const model = buildModel(spec, 1);
  const r = await NativePredictor.tryCreate(model, spec, { threads: 2 });
  if (r.ok) {
    const f = await timed(batch, () => r.predictor.predictLabels(d.x, batch));
    r.predictor.close();
    model.dispose();
    return { ...f, engine: `native forward engine, 2 threads` };
  }
  const frozen = await NativeFrozenNet.tryCreate(model, { threads: 2 });
  if (frozen.ok) {
    const f = await timed(batch, () => frozen.net.predictLabels(d.x, batch));
    frozen.net.close();
    model.dispose();
    return { ...f, engine: "native seq_train engine, inference mode, 2 threads" };
  }
  const rep = new Replica(model);
  const f = await timed(batch, () => rep.predictLogits(d.x, batch, batch));
  model.dispose();
  return { ...f, engine: `wasm, one process (native: ${frozen.reason.slice(0, 80)})` };
}

/**
 * One training step on the native engine plus the kit's optimizer on flat arrays: the DB3 LeNet-5 kernel
 * for LeNet-5s, the general one (lib/native/seq_train.ts) for everything else, as the trainer picks.
 */
async function nativeTrain(spec: ModelSpec, batch: number, o: OptimizerConfig): Promise<Figure> {
  const d = synthetic(spec, batch);
  const model = buildModel(spec, 1);
  const weights = model.getWeights().map((t) => t.dataSync() as Float32Array);
  const params = weights.slice(0, model.trainableWeights.length), stats = weights.slice(params.length);
  const sizes = params.map((p) => p.length);
  const state = createOptimizerState(o, sizes);
  const dims = leNetDims(model);
  let grad: (flat: Float32Array, out: Float32Array) => void, close: () => void, paramCount: number;
  let kernel: string;
  if (typeof dims !== "string") {
    const r = await NativeLeNetGrads.tryCreate(dims, { threads: 2 });
    if (!r.ok) return { load: loadAverage(), note: `native engine unavailable: ${r.reason}` };
    grad = (flat, out) => r.engine.grads(flat, d.x, d.y, batch, out);
    close = () => r.engine.close(), paramCount = r.engine.paramCount, kernel = "LeNet-5 kernel";
  } else {
    const r = await NativeSeqTrainer.tryCreate(model, { threads: 2 });
    if (!r.ok) return { load: loadAverage(), note: `native engine unavailable: ${r.reason}` };
    const stateFlat = new Float32Array(r.engine.stateCount);
    let off = 0;
    for (const s of stats) stateFlat.set(s, off), off += s.length;
    const w = nativeLossWeights({ kind: "ce" }, batch);
    let step = 0;
    grad = (flat, out) => r.engine.lossGrads(flat, stateFlat, d, batch, w, { out, seed: step++ });
    close = () => r.engine.close(), paramCount = r.engine.paramCount, kernel = "general kernel";
  }
  const flat = new Float32Array(paramCount), grads = new Float32Array(paramCount);
  const f = await timed(batch, () => {
    let off = 0;
    for (const p of params) flat.set(p, off), off += p.length;
    grad(flat, grads);
    off = 0;
    const views = sizes.map((n) => grads.subarray(off, off += n));
    optimizerStep(o, state, params, views, { lr: o.lr });
  });
  close();
  model.dispose();
  return { ...f, engine: `native ${kernel} (2 threads) + optimizerStep in JS, one process` };
}

/** CAKE synthesis step on the `logits+grad` oracle: CE to target classes, gradient wrt the inputs, update. */
async function inputGrad(spec: ModelSpec, batch: number): Promise<Figure> {
  const d = synthetic(spec, batch);
  const model = buildModel(spec, 1);
  const oracle = logitsGradOracle(model, { threads: 2 });
  const info = await oracle.engineInfo!();
  const onehot = tf.oneHot(tf.tensor1d(d.y, "int32"), spec.numClasses);
  let x = tf.tensor(d.x, d.shape);
  const f = await timed(batch, async () => {
    const r = await oracle.valueAndGrad(x, (z) => tf.losses.softmaxCrossEntropy(onehot, z), "bench");
    const next = tf.tidy(() => tf.sub(x, tf.mul(r.dx, 0.01)));
    r.logits.dispose();
    r.dx.dispose();
    x.dispose();
    x = next;
  });
  x.dispose();
  oracle.close!();
  model.dispose();
  const engine = info.engine === "native"
    ? "native seq_train engine (inference-mode input gradients, 2 threads), logits+grad oracle"
    : `${info.backend}, logits+grad oracle, one process${
      info.nativeUnavailable ? ` (native: ${info.nativeUnavailable.slice(0, 80)})` : ""
    }`;
  return { ...f, engine };
}

/** Child mode: measure one kit workload and print it as JSON. */
async function kitChild(id: string): Promise<Figure> {
  await initBackend("wasm");
  switch (id) {
    case "lenet5_train_adam_128":
      return await trainerTrain(LENET, 128, ADAM, "auto", "auto");
    case "lenet5_train_adam_512":
      return await trainerTrain(LENET, 512, ADAM, "auto", "auto");
    case "lenet5_train_adam_128_wasm":
      return await trainerTrain(LENET, 128, ADAM, "wasm", 2);
    case "lenet5_train_adam_512_wasm":
      return await trainerTrain(LENET, 512, ADAM, "wasm", 2);
    case "lenet5_train_adam_128_native":
      return await nativeTrain(LENET, 128, ADAM);
    case "lenet5_train_adam_512_native":
      return await nativeTrain(LENET, 512, ADAM);
    case "alexnet_half_train_adam_128":
      return await trainerTrain(ALEXNET, 128, ADAM, "auto", "auto");
    case "alexnet_half_train_adam_512":
      return await trainerTrain(ALEXNET, 512, ADAM, "auto", "auto");
    case "alexnet_half_train_adam_128_wasm":
      return await replicaTrain(ALEXNET, 128, ADAM);
    case "alexnet_half_train_adam_512_wasm":
      return await replicaTrain(ALEXNET, 512, ADAM);
    case "lenet5_labels_1024":
      return await labels(LENET, 1024);
    case "alexnet_half_labels_1024":
      return await labels(ALEXNET, 1024);
    case "resnet18_labels_1024":
      return await labels(RESNET, 1024);
    case "resnet18_train_sgd_128":
      return await nativeTrain(RESNET, 128, SGD);
    case "resnet18_train_sgd_128_wasm":
      return await poolTrain(RESNET, 128, SGD, 2);
    case "resnet18_input_grad_100":
      return await inputGrad(RESNET, 100);
  }
  throw new Error(`unknown workload ${id}; use one of ${WORKLOADS.map((w) => w.id).join(", ")}`);
}

/** Run one kit workload in a subprocess with a time limit; a crash or timeout becomes a note. */
async function kitFigure(id: string, limitSeconds: number): Promise<Figure> {
  const self = fileURLToPath(import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "--kit", id, "--seconds", `${seconds}`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), limitSeconds * 1000);
  const r = await child.output();
  clearTimeout(timer);
  const line = new TextDecoder().decode(r.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
  if (line) return JSON.parse(line) as Figure;
  const err = new TextDecoder().decode(r.stderr).trim().split("\n").filter((l) => l.trim()).slice(-2).join(
    " / ",
  );
  const why = r.signal === "SIGKILL" ? `did not finish within ${limitSeconds} s` : `failed (exit ${r.code})`;
  return { load: loadAverage(), note: `${why}: ${err.slice(0, 200)}` };
}

/** PyTorch figures for `ids` from one run of pytorch_baseline.py (or a note for every row). */
async function torchFigures(
  ids: string[],
): Promise<{ config?: Record<string, unknown>; rows: Map<string, Figure> }> {
  const rows = new Map<string, Figure>();
  const script = fileURLToPath(new URL("./pytorch_baseline.py", import.meta.url));
  let out: string;
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: [script, "--only", ids.join(","), "--seconds", `${seconds}`, "--threads", "2"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    out = new TextDecoder().decode(r.stdout);
  } catch (e) {
    out = JSON.stringify({ kind: "error", id: "import", message: `cannot run /usr/bin/python3: ${e}` });
  }
  const lines = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const config = lines.find((l) => l.kind === "config");
  const fatal = lines.find((l) => l.kind === "error" && l.id === "import");
  for (const id of ids) {
    const row = lines.find((l) => l.kind === "row" && l.id === id);
    const bad = lines.find((l) => l.kind === "error" && l.id === id) ?? fatal;
    rows.set(
      id,
      row
        ? { rate: row.rate, iters: row.iters, load: String(row.load) }
        : { load: loadAverage(), note: bad?.message ?? "no figure" },
    );
  }
  return { config, rows };
}

if (args[0] === "--kit") {
  try {
    console.log(JSON.stringify(await kitChild(args[1])));
  } catch (e) {
    console.log(
      JSON.stringify({ load: loadAverage(), note: `error: ${(e as Error).message.slice(0, 200)}` }),
    );
  }
  Deno.exit(0);
}

const only = opt("only", "").split(",").filter((s) => s);
const chosen = WORKLOADS.filter((w) => !only.length || only.some((s) => w.id.includes(s)));
const startLoad = loadAverage();
const torch = args.includes("--no-torch")
  ? {
    rows: new Map<string, Figure>(
      chosen.map((w) => [w.torchId ?? w.id, { load: "", note: "not run (--no-torch)" }]),
    ),
  }
  : await torchFigures([...new Set(chosen.map((w) => w.torchId ?? w.id))]);
const kit = new Map<string, Figure>();
for (const w of chosen) kit.set(w.id, await kitFigure(w.id, Math.max(240, 40 * seconds)));

const int = (v: number) => Math.round(v).toLocaleString("en-US");
const cell = (f: Figure) => f.rate ? `${int(f.rate)} (load ${f.load})` : (f.note ?? "?");
const cfg = (torch as { config?: Record<string, unknown> }).config;
console.log(
  `Kit vs PyTorch on the CPU, ${
    new Date().toISOString().slice(0, 16)
  } UTC, ${navigator.hardwareConcurrency} cores, ` +
    `load average ${startLoad} at start.\n` +
    (cfg
      ? `PyTorch ${cfg.torch}, ${cfg.threads} threads, BLAS ${cfg.libblas_alternative} (${
        (cfg.blas as string[]).join(", ")
      }), CPU ${cfg.cpu}.\n`
      : "") +
    `Wall-clock rates after one warm-up step, ≥ ${seconds} s or 2 steps each; (load) = 1-minute load average ` +
    "when the figure was taken.\n",
);
console.log("| workload | batch | PyTorch | kit | ratio | target | kit path |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
for (const w of chosen) {
  const t = torch.rows.get(w.torchId ?? w.id)!, k = kit.get(w.id)!;
  const ratio = t.rate && k.rate ? `${(k.rate / t.rate).toFixed(2)}×` : "—";
  console.log(
    `| ${w.what}, ${w.unit} | ${w.batch} | ${cell(t)} | ${cell(k)} | ${ratio} | ≥ ${w.target.toFixed(1)}× | ${
      k.engine ?? ""
    } |`,
  );
}
if (args.includes("--json")) {
  for (const w of chosen) {
    console.log(JSON.stringify({ id: w.id, torch: torch.rows.get(w.torchId ?? w.id), kit: kit.get(w.id) }));
  }
}
