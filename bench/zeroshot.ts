/**
 * ZSDB3KD generation benchmark (MNIST, DB3 LeNet-5 teacher): label queries per second and seconds per
 * pseudo sample, per stage, at the laptop settings of `lib/experiments/zs_settings.ts` (or smaller).
 *
 *     deno run -A bench/zeroshot.ts [--teacher laptop|smoke] [--per-class 20] [--iterations 10]
 *                                   [--workers 2] [--engine auto|native|pool] [--in-process]
 *
 * Rows: the noise initialisation (draws, walk), one untargeted boundary pass over the set (shared
 * random init, bisection, Sign-OPT) with its step, and the whole generation; each with its label
 * queries, wall seconds, queries/s and seconds per pseudo sample. The machine is shared: CPU seconds
 * of this process are printed beside wall time. Nothing is cached (a fresh checkpoint-less run). The
 * oracle runs on `teacherPredictor` (native engine when it builds, else the wasm pool; `--engine`
 * chooses) unless `--in-process`.
 */
import process from "node:process";
import { initBackend } from "../lib/backend.ts";
import { labelOracle } from "../lib/oracle/oracle.ts";
import { engineInfo, parseEngine, teacherPredictor } from "../lib/native/teacher_predictor.ts";
import { toMarkdown } from "../lib/results/table.ts";
import { getTeacher } from "../lib/train/teachers.ts";
import { zsSettings } from "../lib/experiments/zs_settings.ts";
import { generatePseudoSamples } from "../lib/zeroshot/generate.ts";
import { initPseudoNoise } from "../lib/zeroshot/noise_init.ts";
import { untargetedBoundary } from "../lib/zeroshot/untargeted.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined ? Deno.args[i + 1] : fallback;
}

const teacherScale = arg("teacher", "laptop") === "smoke" ? "smoke" : "laptop";
const settings = zsSettings("laptop", "mnist");
const perClass = Number(arg("per-class", String(settings.generate.perClass)));
const iterations = Number(arg("iterations", String(settings.generate.iterations)));
const workers = Number(arg("workers", "2"));
const inProcess = Deno.args.includes("--in-process");

const backend = await initBackend();
const t = await getTeacher({ dataset: "mnist", scale: teacherScale, seed: 1 });
const engine = parseEngine(arg("engine", "auto"), "--engine");
const pool = inProcess ? undefined : await teacherPredictor(t.model, t.spec, { workers, engine });
const oracle = () => labelOracle(pool ?? t.model);

type Row = Record<string, string | number>;
const rows: Row[] = [];
async function timed(stage: string, samples: number, f: () => Promise<number>) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const queries = await f();
  const sec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  rows.push({
    stage,
    "pseudo samples": samples,
    "label queries": queries,
    "wall s": sec.toFixed(1),
    "CPU s (this process)": ((cpu.user + cpu.system) / 1e6).toFixed(1),
    "queries/s": Math.round(queries / sec),
    "s per pseudo sample": (sec / samples).toFixed(3),
  });
}

try {
  const noiseOpts = { ...settings.generate.noise, perClass, seed: 1 };
  let init: Awaited<ReturnType<typeof initPseudoNoise>> | undefined;
  await timed("noise initialisation", 10 * perClass, async () => {
    const o = oracle();
    init = await initPseudoNoise(o, noiseOpts);
    return o.ledger.spent;
  });
  await timed("one untargeted pass (init + bisection + Sign-OPT)", init!.y.length, async () => {
    const o = oracle();
    await untargetedBoundary(o, init!.x, init!.y, { ...settings.generate.untargeted, seed: 1 });
    return o.ledger.spent;
  });
  await timed(`generation (${iterations} iterations, all stages)`, 10 * perClass, async () => {
    const o = oracle();
    await generatePseudoSamples(o, {
      ...settings.generate,
      perClass,
      iterations,
      snapshotAt: [iterations],
      seed: 1,
      progress: false,
    });
    return o.ledger.spent;
  });
  console.log(
    `# ZSDB3KD generation, MNIST, teacher ${t.spec.name} (${teacherScale}, test acc ${
      (100 * t.meta.testAcc).toFixed(2)
    }%), backend ${backend.name}, ${inProcess ? "in-process oracle" : engineInfo(pool!).label}`,
  );
  console.log(
    `# untargeted: ${
      JSON.stringify(settings.generate.untargeted)
    }; reference: ≈ 2×10^5 queries per pseudo sample\n`,
  );
  console.log(toMarkdown(rows));
} finally {
  pool?.close();
}
