/**
 * Throughput of DB3 LeNet-5 (MNIST shape) training and inference, in-process vs the worker pool,
 * on each available backend. Prints a markdown table.
 *
 *   deno run -A bench/train.ts [--backends wasm,cpu] [--images 6144] [--cpu-train]
 *
 * Synthetic inputs (uniform pixels, random labels): throughput does not depend on the content.
 * cpu training (a few images/s: tfjs-cpu's conv gradients are naive) is skipped unless `--cpu-train`.
 */
import { initBackend } from "../lib/backend.ts";
import type { BackendName } from "../lib/backend.ts";
import { buildModel, type ModelSpec } from "../lib/models/registry.ts";
import { coreCount, ModelPool } from "../lib/parallel/pool.ts";
import { gatherBatch, Replica } from "../lib/parallel/replica.ts";
import { Rng } from "../lib/util/rng.ts";

const args = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const backends = opt("backends", "wasm,cpu").split(",") as BackendName[];
const trainImages = Number(opt("images", "6144"));
const inferImages = Number(opt("infer-images", "16384"));

const SPEC: ModelSpec = { name: "db3-lenet5", inputShape: [28, 28, 1], numClasses: 10 };
const N = 8192;
const rng = new Rng(1);
const data = {
  x: rng.fillUniform(new Float32Array(N * 784)),
  shape: [N, 28, 28, 1],
  y: Int32Array.from({ length: N }, () => rng.int(10)),
};
const LOSS = { kind: "ce" } as const;
const OPT = { kind: "adam", lr: 1e-3 } as const;
const now = () => performance.now() / 1000;
/** CPU seconds used by this process, all threads (Linux /proc; NaN elsewhere). */
function cpuSeconds(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}
/** A measured rate: wall-clock, and CPU-time normalised to `threads` busy cores (the rate on an idle machine). */
interface Rate {
  wall: number;
  cpu: number;
}
async function measure(units: number, threads: number, body: () => Promise<void> | void): Promise<Rate> {
  const t0 = now(), c0 = cpuSeconds();
  await body();
  const wall = now() - t0, cpu = cpuSeconds() - c0;
  return { wall: units / wall, cpu: (units / cpu) * threads };
}

async function trainRate(
  backend: BackendName,
  workers: number,
  batch: number,
  images: number,
): Promise<Rate> {
  const steps = Math.max(2, Math.ceil(images / batch));
  const batches = Array.from({ length: steps + 1 }, () => rng.permutation(N).slice(0, batch));
  if (workers === 1) {
    const model = buildModel(SPEC, 1);
    const r = new Replica(model);
    r.configure(LOSS, OPT);
    const step = (idx: Int32Array) => r.apply(r.gradients(gatherBatch(data, idx), batch).grads, { lr: 1e-3 });
    step(batches[0]); // warm-up
    const r1 = await measure(steps * batch, 1, () => {
      for (let s = 1; s <= steps; s++) step(batches[s]);
    });
    model.dispose();
    return r1;
  }
  const pool = await ModelPool.create(SPEC, undefined, { workers, backend, seed: 1 });
  try {
    await pool.setTrainData(data);
    await pool.configureTraining(LOSS, OPT);
    await pool.trainStep(batches[0], { lr: 1e-3 });
    return await measure(steps * batch, Math.min(workers, coreCount()), async () => {
      for (let s = 1; s <= steps; s++) await pool.trainStep(batches[s], { lr: 1e-3 });
      await pool.getWeights();
    });
  } finally {
    pool.close();
  }
}

async function inferRate(
  backend: BackendName,
  workers: number,
  batch: number,
  images: number,
): Promise<Rate> {
  const calls = Math.max(2, Math.ceil(images / batch));
  const x = data.x.subarray(0, batch * 784);
  if (workers === 1) {
    const model = buildModel(SPEC, 1);
    const r = new Replica(model);
    r.predictLogits(x, batch, 4096);
    const r1 = await measure(calls * batch, 1, () => {
      for (let c = 0; c < calls; c++) r.predictLogits(x, batch, 4096);
    });
    model.dispose();
    return r1;
  }
  const pool = await ModelPool.create(SPEC, undefined, { workers, backend, seed: 1, inferBatchSize: 4096 });
  try {
    await pool.predictLabels(x, batch);
    return await measure(calls * batch, Math.min(workers, coreCount()), async () => {
      for (let c = 0; c < calls; c++) await pool.predictLabels(x, batch);
    });
  } finally {
    pool.close();
  }
}

const int = (v: number) => Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "?";
const fmt = (r: Rate) => `${int(r.wall)} (${int(r.cpu)})`;
const workerCounts = [...new Set([1, Math.max(2, coreCount())])];
const load = (() => {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
})();
console.log(
  `DB3 LeNet-5, 28×28×1, ${coreCount()} cores (load average ${load} at start), Adam, CE loss.\n` +
    "Images/s: wall clock, and in parentheses CPU-time normalised (images per CPU-second × busy cores),\n" +
    "which estimates the rate on an otherwise idle machine.\n",
);
console.log(`| backend | what | batch | ${workerCounts.map((w) => `workers=${w}`).join(" | ")} |`);
console.log(`| --- | --- | ---: | ${workerCounts.map(() => "---:").join(" | ")} |`);
for (const b of backends) {
  try {
    await initBackend(b);
  } catch (e) {
    console.log(
      `| ${b} | unavailable: ${(e as Error).message.split("\n")[0]} | | ${
        workerCounts.map(() => "").join(" | ")
      } |`,
    );
    continue;
  }
  const imgs = b === "cpu" ? Math.min(trainImages, 256) : trainImages;
  for (const batch of b === "cpu" && !args.includes("--cpu-train") ? [] : [128, 256, 512]) {
    const cells: string[] = [];
    for (const w of workerCounts) cells.push(fmt(await trainRate(b, w, batch, imgs)));
    console.log(`| ${b} | train | ${batch} | ${cells.join(" | ")} |`);
  }
  for (const batch of [64, 256, 1024, 4096]) {
    const cells: string[] = [];
    for (const w of workerCounts) {
      cells.push(fmt(await inferRate(b, w, batch, b === "cpu" ? 4096 : inferImages)));
    }
    console.log(`| ${b} | infer (labels) | ${batch} | ${cells.join(" | ")} |`);
  }
}
