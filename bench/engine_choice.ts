/**
 * The native training engine, chosen by measurement (issue 12): one DB3 LeNet-5 training step
 * (forward, softmax cross-entropy, backward, Adam update) at batch 128 on 2 threads, in each candidate
 * engine, beside PyTorch in the same run.
 *
 *     deno run -A bench/engine_choice.ts [--seconds 8] [--batch 128] [--threads 2] [--only libtorch,dnnl]
 *
 * Candidates (bench/engines/*.cpp, all with the same C ABI: `cand_init`, `cand_step`, `cand_describe`):
 * - `libtorch`: Debian's libtorch-dev (PyTorch 1.13 C++ frontend) behind a C shim;
 * - `dnnl`: Debian's libdnnl-dev (oneDNN 2.6 primitives, forward and backward), loss and Adam by hand;
 * - `handwritten`: plain C++ backward kernels in the style of lib/native/forward.cpp.
 * Each is compiled with g++ into `data/cache/native/bench/` and measured in its own subprocess (so two
 * OpenMP runtimes never share a process), loaded by Deno FFI; PyTorch runs bench/pytorch_baseline.py
 * before and after the candidates. Every figure is printed with the 1-minute load average at the time
 * (the machine is shared). Prints a markdown table and, with `--json`, one JSON line per figure.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../lib/util/paths.ts";
import { Rng } from "../lib/util/rng.ts";

/** One candidate engine: its source and how to compile/link it. */
interface Candidate {
  id: string;
  source: string;
  flags: string[];
  libs: string[];
}

const CANDIDATES: Candidate[] = [
  {
    id: "libtorch",
    source: "libtorch_lenet_step.cpp",
    flags: ["-O2", "-I/usr/include/torch/csrc/api/include"],
    libs: ["-ltorch", "-ltorch_cpu", "-lc10"],
  },
  {
    id: "dnnl",
    source: "dnnl_lenet_step.cpp",
    flags: ["-O3", "-march=native", "-fopenmp"],
    libs: ["-ldnnl"],
  },
  {
    id: "handwritten",
    source: "handwritten_lenet_step.cpp",
    flags: ["-O3", "-march=native", "-pthread"],
    libs: [],
  },
];

const SYMBOLS = {
  cand_init: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  cand_step: { parameters: ["buffer", "buffer"], result: "f32" },
  cand_describe: { parameters: ["buffer", "i32"], result: "i32" },
} as const;

const args = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const seconds = Number(opt("seconds", "8"));
const batch = Number(opt("batch", "128"));
const threads = Number(opt("threads", "2"));

/** 1-minute load average ("?" where unreadable). */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
}

/** CPU seconds used by this process, all threads (Linux /proc; NaN elsewhere). */
function cpuSeconds(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function cString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
}

/** Compile a candidate into the bench cache (once per source/flags); the .so path or why not. */
async function compile(c: Candidate): Promise<{ path: string } | { reason: string }> {
  const src = fileURLToPath(new URL(`./engines/${c.source}`, import.meta.url));
  const text = await Deno.readTextFile(src);
  const hash = createHash("sha256").update(JSON.stringify([text, c.flags, c.libs])).digest("hex").slice(
    0,
    12,
  );
  const dir = `${repoRoot()}/data/cache/native/bench`;
  const path = `${dir}/${c.id}-${hash}.so`;
  try {
    await Deno.stat(path);
    return { path };
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  const r = await new Deno.Command("g++", {
    args: ["-std=c++17", "-shared", "-fPIC", ...c.flags, "-o", tmp, src, ...c.libs],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr).trim().split("\n").slice(0, 6).join(" / ");
    return { reason: `g++ could not build ${c.source}: ${err}` };
  }
  await Deno.rename(tmp, path);
  return { path };
}

/** One measured figure. */
interface Figure {
  id: string;
  engine: string;
  rate?: number;
  /** Images per CPU-second of the process (all threads). */
  perCpu?: number;
  steps?: number;
  firstLoss?: number;
  lastLoss?: number;
  load: string;
  note?: string;
}

/** Child mode: load one compiled candidate and time its training step. */
function measureCandidate(id: string, path: string): Figure {
  const lib = Deno.dlopen(path, SYMBOLS);
  const err = new Uint8Array(512);
  if (lib.symbols.cand_init(batch, threads, err, err.length) !== 0) {
    return { id, engine: id, load: loadAverage(), note: `init failed: ${cString(err)}` };
  }
  const desc = new Uint8Array(256);
  lib.symbols.cand_describe(desc, desc.length);
  const rng = new Rng(1);
  const x = rng.fillUniform(new Float32Array(batch * 784));
  const y = Int32Array.from({ length: batch }, () => rng.int(10));
  const firstLoss = lib.symbols.cand_step(x, y);
  lib.symbols.cand_step(x, y); // warm-up
  const load = loadAverage();
  let steps = 0, lastLoss = NaN;
  const t0 = performance.now(), c0 = cpuSeconds();
  let dt = 0;
  while (steps < 3 || dt < seconds) {
    lastLoss = lib.symbols.cand_step(x, y);
    steps++;
    dt = (performance.now() - t0) / 1000;
  }
  const perCpu = (steps * batch) / (cpuSeconds() - c0);
  return { id, engine: cString(desc), rate: (steps * batch) / dt, perCpu, steps, firstLoss, lastLoss, load };
}

async function runChild(id: string, path: string): Promise<Figure> {
  const self = fileURLToPath(import.meta.url);
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      self,
      "--child",
      id,
      path,
      "--seconds",
      `${seconds}`,
      "--batch",
      `${batch}`,
      "--threads",
      `${threads}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(out) as Figure;
  } catch {
    const err = new TextDecoder().decode(r.stderr).trim().split("\n").slice(-3).join(" / ");
    return { id, engine: id, load: loadAverage(), note: `crashed (exit ${r.code}): ${err}` };
  }
}

/** PyTorch's rate for the same step, from bench/pytorch_baseline.py (undefined rate with a note if absent). */
export async function pytorchFigure(workload: string, secs: number, nthreads: number): Promise<Figure> {
  const script = fileURLToPath(new URL("./pytorch_baseline.py", import.meta.url));
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: [script, "--only", workload, "--seconds", `${secs}`, "--threads", `${nthreads}`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(r.stdout).split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    );
    const cfg = lines.find((l) => l.kind === "config");
    const row = lines.find((l) => l.kind === "row");
    const bad = lines.find((l) => l.kind === "error");
    if (!row) {
      return { id: "pytorch", engine: "PyTorch", load: loadAverage(), note: bad?.message ?? "no figure" };
    }
    return {
      id: "pytorch",
      engine: `PyTorch ${cfg.torch} (${cfg.threads} threads, BLAS ${cfg.libblas_alternative})`,
      rate: row.rate,
      perCpu: row.per_cpu_second,
      steps: row.iters,
      load: String(row.load),
    };
  } catch (e) {
    return {
      id: "pytorch",
      engine: "PyTorch",
      load: loadAverage(),
      note: `not run: ${
        (e as Error).message
      }; install with apt-get install -y python3-torch libopenblas0-pthread`,
    };
  }
}

if (args[0] === "--child") {
  console.log(JSON.stringify(measureCandidate(args[1], args[2])));
  Deno.exit(0);
}

const only = opt("only", "").split(",").filter((s) => s);
const figures: Figure[] = [];
figures.push(await pytorchFigure(`lenet5_train_adam_${batch}`, seconds, threads));
for (const c of CANDIDATES) {
  if (only.length && !only.includes(c.id)) continue;
  const built = await compile(c);
  figures.push(
    "reason" in built
      ? { id: c.id, engine: c.id, load: loadAverage(), note: built.reason }
      : await runChild(c.id, built.path),
  );
}
figures.push(await pytorchFigure(`lenet5_train_adam_${batch}`, seconds, threads));
const torchRates = figures.filter((f) => f.id === "pytorch" && f.rate).map((f) => f.rate!);
const torchRate = torchRates.length ? torchRates.reduce((a, b) => a + b) / torchRates.length : NaN;
const int = (v: number) => Math.round(v).toLocaleString("en-US");
console.log(
  `DB3 LeNet-5 training step (forward + CE + backward + Adam), batch ${batch}, ${threads} threads, ` +
    `${new Date().toISOString().slice(0, 16)} UTC.\nRatio: candidate / mean of the two PyTorch figures.\n`,
);
console.log(
  "| engine | images/s | ratio to PyTorch | images per CPU-s | ratio per CPU-s | steps | loss first → last | load (1 min) |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
const torchCpus = figures.filter((f) => f.id === "pytorch" && f.perCpu).map((f) => f.perCpu!);
const torchCpu = torchCpus.length ? torchCpus.reduce((a, b) => a + b) / torchCpus.length : NaN;
for (const f of figures) {
  const rate = f.rate ? int(f.rate) : f.note ?? "?";
  const ratio = f.rate && f.id !== "pytorch" ? `${(f.rate / torchRate).toFixed(2)}×` : "";
  const loss = f.firstLoss !== undefined ? `${f.firstLoss.toFixed(3)} → ${f.lastLoss!.toFixed(3)}` : "";
  const cpu = f.perCpu ? int(f.perCpu) : "";
  const cpuRatio = f.perCpu && f.id !== "pytorch" ? `${(f.perCpu / torchCpu).toFixed(2)}×` : "";
  console.log(
    `| ${f.engine} | ${rate} | ${ratio} | ${cpu} | ${cpuRatio} | ${f.steps ?? ""} | ${loss} | ${f.load} |`,
  );
}
if (args.includes("--json")) { for (const f of figures) console.log(JSON.stringify(f)); }
