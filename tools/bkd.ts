/**
 * `deno task bkd <command>`: experiments as runs of units in a run store.
 *
 *   plan    [spec flags]                       units per level, teacher queries, core-hours
 *   plan    --all [--scale S]                  one row per notebook: units, queries, core-hours, wall time
 *   run     --store DIR --executor E [spec flags] [--workers N] [--throttle N] [--sbatch-opt=O]… [--wait]
 *           [--image I --pvc P --mount PATH [--apply]]          (E: in-process | local | slurm | k8s)
 *   status  --store DIR                        done / running / queued / failed units, queries
 *   collect --store DIR [--runs-dir DIR]       reduce, save the run record(s), print the table
 *   unit    --store DIR --level L [--index I]  one unit (index also from SLURM_ARRAY_TASK_ID or
 *                                              JOB_COMPLETION_INDEX)
 *   import  --store NEW --from OLD [spec flags] copy (hard-link) every done unit of OLD whose key is in
 *                                              NEW's plan (NEW is created from the spec flags if new)
 *
 * Notebook experiments (registry lib/experiments/notebooks.ts): --notebook ID --scale S [--seeds 1,2,3]
 * [--seed N (labeling seed)] [--methods ce,kd,sd,bd,mbd] [--teacher SOURCE] [--engine E]
 * [--set key=value]… (settings overrides, e.g. --set student.epochs=20; an unknown key is an error).
 *
 * Spec flags (family db3-label): --dataset mnist|fmnist|cifar10 --scale smoke|laptop|paper --seed N
 * --n N --shard-size N --candidates N --engine auto|native|pool --teacher SOURCE (a model folder, an
 * endpoint URL .../v2/models/NAME or .../v1/models/NAME with its token in BKD_TEACHER_TOKEN, or
 * dataset:model:scale[:seed]; default the scale's kit recipe). A store that exists is resumed with
 * its own spec when no spec flag is given; with spec flags they must match it.
 *
 * Exit codes: 0 done, 1 a unit or the run failed, 2 bad input (retrying cannot help).
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { db3LabelPlan } from "../lib/experiments/db3_label_spec.ts";
import { readDb3LabelResult } from "../lib/experiments/db3_label_units.ts";
import { resolveTeacher } from "../lib/experiments/open_teacher.ts";
import { familyOf } from "../lib/experiments/families.ts";
import { RunStore } from "../lib/runner/store.ts";
import { runUnit } from "../lib/runner/unit.ts";
import { unitIndexFrom } from "../lib/runner/command.ts";
import { runInProcess, type UnitReport } from "../lib/runner/executors/in_process.ts";
import { runLocal } from "../lib/runner/executors/local.ts";
import { queuedTasks, submitSlurm } from "../lib/runner/executors/slurm.ts";
import { k8sManifests } from "../lib/runner/executors/k8s.ts";
import { runStatus } from "../lib/runner/status.ts";
import { levelOf } from "../lib/runner/plan.ts";
import { planWallSeconds } from "../lib/runner/cost.ts";
import { formatWall, planTableMarkdown, planTableRows } from "../lib/experiments/plan_table.ts";
import { formatProgressLine } from "../lib/show/progress.ts";
import { saveRun, startRun } from "../lib/results/record.ts";
import {
  type NotebookExperiment,
  notebookExperiment,
  type NotebookRequest,
  UNRESOLVED_TEACHER,
} from "../lib/experiments/notebooks.ts";
import { collectDb3 } from "../lib/experiments/db3_collect.ts";
import { importUnits } from "../lib/runner/import.ts";
import { parseEngine } from "../lib/native/teacher_predictor.ts";
import { parseScale, SCALES } from "../lib/scale.ts";
import type { RunPlan } from "../lib/runner/plan.ts";
import {
  fail,
  type Flags,
  InputError,
  int,
  intList,
  mdTable,
  needStore,
  setOverrides,
  SPEC_FLAGS,
  specFrom,
  str,
} from "./bkd_args.ts";

const EXECUTORS = ["in-process", "local", "slurm", "k8s"] as const;

/** The request `--notebook ID` and its flags describe, and the notebook's experiment. */
function notebookRequest(f: Flags): { exp: NotebookExperiment; req: NotebookRequest } {
  const id = str(f, "notebook")!;
  const exp = (() => {
    try {
      return notebookExperiment(id);
    } catch (e) {
      fail((e as Error).message);
    }
  })();
  const sc = str(f, "scale") ?? "smoke";
  if (!SCALES.includes(sc as never)) fail(`unknown --scale "${sc}"; use one of ${SCALES.join(", ")}`);
  const e = str(f, "engine");
  const sets = f.set;
  return {
    exp,
    req: {
      scale: parseScale(sc),
      seeds: intList(str(f, "seeds"), "seeds"),
      labelSeed: int(str(f, "seed"), "seed"),
      methods: str(f, "methods")?.split(",").map((m) => m.trim()),
      teacher: str(f, "teacher"),
      engine: e === undefined ? undefined : parseEngine(e) ?? fail(`unknown --engine "${e}"`),
      override: setOverrides(Array.isArray(sets) ? sets : []),
    },
  };
}

/** The plan the flags describe (teacher resolved, i.e. trained if needed, only when `resolve`). */
async function planFrom(f: Flags, resolveTeacherNow: boolean): Promise<RunPlan> {
  if (str(f, "notebook") !== undefined) {
    const { exp, req } = notebookRequest(f);
    try {
      return await exp.plan(req, resolveTeacherNow);
    } catch (err) {
      if (err instanceof InputError) throw err;
      fail((err as Error).message);
    }
  }
  const spec = specFrom(f);
  return db3LabelPlan(
    spec,
    resolveTeacherNow ? (await resolveTeacher(spec)).fingerprint : UNRESOLVED_TEACHER,
  );
}

/** `plan --all`: one row per notebook (units, queries, core-hours, wall on 2 / 64 / 512 cores). */
async function cmdPlanAll(f: Flags): Promise<void> {
  const sc = str(f, "scale") ?? "paper";
  if (!SCALES.includes(sc as never)) fail(`unknown --scale "${sc}"; use one of ${SCALES.join(", ")}`);
  console.log(planTableMarkdown(await planTableRows(parseScale(sc))));
}

async function cmdPlan(f: Flags): Promise<void> {
  if (f.all) return await cmdPlanAll(f);
  const plan = await planFrom(f, false);
  const s = plan.spec as { dataset?: string; scale?: string };
  console.log(`${plan.family} ${s.dataset ?? ""} at ${s.scale ?? "?"}`);
  let queries = 0, cpu = 0;
  const sources = new Set<string>();
  console.log(mdTable(plan.levels.map((l) => {
    const n = l.keys.length;
    const q = l.estimate ? n * l.estimate.queries : NaN, c = l.estimate ? n * l.estimate.cpuSeconds : NaN;
    if (l.estimate) {
      queries += q;
      cpu += c;
      sources.add(`${l.name}: ${l.estimate.source}`);
    }
    return {
      level: l.name,
      units: n,
      "teacher queries": Number.isNaN(q) ? "?" : Math.round(q),
      "core-hours": Number.isNaN(c) ? "?" : (c / 3600).toFixed(3),
      "cores/unit": l.resources.cores,
      "MB/unit": l.resources.memoryMB,
      "time limit min": l.resources.timeMinutes,
    };
  })));
  const coreHours = cpu / 3600;
  const wall = (c: number) => formatWall(planWallSeconds(plan, c));
  console.log(
    `teacher queries ≈ ${Math.round(queries).toLocaleString("en-US")}; ≈ ${
      coreHours.toFixed(2)
    } core-hours ` +
      `(wall ≈ ${wall(2)} on 2 cores, ${wall(64)} on 64, ${wall(512)} on 512)`,
  );
  console.log(`rates: ${[...sources].join("; ")}`);
}

async function openOrCreate(f: Flags, root: string): Promise<RunStore> {
  const hasSpec = SPEC_FLAGS.some((k) => f[k] !== undefined);
  const exists = await Deno.stat(`${root}/run.json`).then(() => true, () => false);
  if (exists && !hasSpec) return RunStore.open(root);
  return RunStore.create(root, await planFrom(f, true));
}

function reportUnits(reports: UnitReport[]): number {
  const failed = reports.filter((r) => r.status === "failed");
  for (const r of failed) console.error(`unit ${r.level}[${r.index}] failed: ${r.detail}`);
  console.log(`${reports.length} units: ${reports.length - failed.length} ok, ${failed.length} failed`);
  return failed.length > 0 ? 1 : 0;
}

async function cmdRun(f: Flags): Promise<number> {
  const root = needStore(f);
  const executor = str(f, "executor") ?? fail(`--executor is required: one of ${EXECUTORS.join(", ")}`);
  if (!EXECUTORS.includes(executor as never)) {
    fail(`unknown executor "${executor}"; use one of ${EXECUTORS.join(", ")}`);
  }
  const store = await openOrCreate(f, root);
  const onUnit = (r: UnitReport) =>
    console.error(`${r.level}[${r.index}] ${r.status} (${r.seconds.toFixed(1)} s)`);
  if (executor === "in-process") {
    return reportUnits(await runInProcess(store, familyOf(store.plan.family), { onUnit }));
  }
  if (executor === "local") {
    return reportUnits(await runLocal(store, { workers: int(str(f, "workers"), "workers") ?? 2, onUnit }));
  }
  if (executor === "slurm") {
    const opts = f["sbatch-opt"];
    const subs = await submitSlurm(store, {
      throttle: int(str(f, "throttle"), "throttle"),
      sbatchOptions: Array.isArray(opts) ? opts : [],
    });
    for (const s of subs) console.log(`submitted ${s.level}: job ${s.jobId}, ${s.indices.length} units`);
    if (subs.length === 0) console.log("nothing to submit: every unit is done or queued");
    if (!f.wait) return 0;
    // Poll the queue (sbatch --wait polls slowly) until none of this run's tasks is left.
    let last = "";
    for (;;) {
      const queue = await queuedTasks(store.plan);
      const st = await runStatus(store, queue);
      const line = `${st.done}/${st.units} units done, ${queue.length} queued or running`;
      if (line !== last) console.error(line);
      last = line;
      if (queue.length === 0) {
        const failed = st.levels.flatMap((l) => l.failedIndices.map((i) => `${l.level}[${i}]`));
        if (failed.length > 0) {
          console.error(`failed: ${failed.join(", ")}; logs in ${store.root}/logs; rerun to resubmit`);
        }
        return st.done === st.units ? 0 : 1;
      }
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
  const image = str(f, "image") ?? fail("--image is required for k8s (an image with the kit and deno)");
  const pvc = str(f, "pvc") ?? fail("--pvc is required for k8s (the claim holding the run store)");
  const mount = str(f, "mount") ?? root;
  const jobs = k8sManifests(store.plan, { image, pvc, storePath: mount });
  await Deno.mkdir(`${root}/k8s`, { recursive: true });
  for (const [i, job] of jobs.entries()) {
    const path = `${root}/k8s/${i}-${store.plan.levels[i].name}.json`;
    await Deno.writeTextFile(path, JSON.stringify(job, null, 2) + "\n");
    console.log(`wrote ${path}`);
    if (f.apply) {
      const name = (job.metadata as { name: string }).name;
      for (
        const args of [["apply", "-f", path], [
          "wait",
          "--for=condition=complete",
          `job/${name}`,
          "--timeout=-1s",
        ]]
      ) {
        const st = await new Deno.Command("kubectl", { args }).spawn().status;
        if (!st.success) return 1;
      }
    }
  }
  return 0;
}

async function cmdStatus(f: Flags): Promise<number> {
  const store = await RunStore.open(needStore(f));
  const slurm = await Deno.stat(`${store.root}/slurm.jsonl`).then(() => true, () => false);
  const queue = slurm ? await queuedTasks(store.plan).catch(() => []) : [];
  const s = await runStatus(store, queue);
  console.log(
    mdTable(s.levels.map(({ failedIndices, ...l }) => ({ ...l, "failed indices": failedIndices.join(",") }))),
  );
  console.log(
    `queries: ${s.queriesDone.toLocaleString("en-US")} by finished units, ` +
      `${s.queriesInFlight.toLocaleString("en-US")} by unfinished or killed attempts`,
  );
  // Rate and ETA count from the store's creation (a resumed run's rate includes its pauses).
  const created = (await Deno.stat(`${store.root}/run.json`)).mtime?.getTime() ?? Date.now();
  const elapsedSec = Math.max(0, (Date.now() - created) / 1000);
  console.log(
    formatProgressLine({ label: "units done", done: s.done, total: s.units, unit: "unit", elapsedSec }),
  );
  return 0;
}

async function cmdCollect(f: Flags): Promise<number> {
  const store = await RunStore.open(needStore(f));
  if (store.plan.family === "db3") {
    const r = await collectDb3(store);
    const dir = str(f, "runs-dir");
    for (const rec of r.records) console.log(`record: ${(await saveRun(rec, dir ? { dir } : {})).json}`);
    console.log(mdTable(r.rows.map((x) => ({
      method: x.method,
      "final acc (%)": (100 * x.testAcc).toFixed(2),
      "± over seeds (pp)": x.testAccSpread === undefined ? "" : (100 * x.testAccSpread).toFixed(2),
      "queries / image": x.queriesPerSample,
      "trained on": x.trainedOn,
    }))));
    return 0;
  }
  const reduce = levelOf(store.plan, "reduce");
  if (!(await store.isDone(reduce.keys[0]))) await runUnit(store, familyOf(store.plan.family), "reduce", 0);
  const r = await readDb3LabelResult(store);
  const handle = startRun({
    experiment: `runner-${r.spec.family}-${r.spec.dataset}`,
    method: "db3-bd",
    dataset: r.spec.dataset,
    scale: r.spec.scale,
    seed: r.spec.seed,
    config: {
      spec: r.spec,
      teacher: store.plan.teacher,
      engine: r.engine,
      units: store.plan.levels[0].keys.length,
    },
  });
  const metrics = {
    samples: r.n,
    queries: r.ledger.totals.spent,
    paidQueries: r.paid.totals.spent,
    queriesPerSample: r.ledger.totals.spent / r.n,
    misclassified: r.misclassified,
    flagged: r.flagged,
    unitSeconds: r.unitSeconds,
  };
  const record = handle.finish(metrics, { ledger: r.paid });
  const dir = str(f, "runs-dir");
  const paths = await saveRun(record, dir ? { dir } : {});
  console.log(mdTable([metrics]));
  console.log(`record: ${paths.json}`);
  return 0;
}

async function cmdUnit(f: Flags): Promise<number> {
  const store = await RunStore.open(needStore(f));
  const level = str(f, "level") ?? fail("--level is required (a level name from run.json)");
  let index: number;
  try {
    index = unitIndexFrom(str(f, "index"), (k) => Deno.env.get(k));
  } catch (e) {
    fail((e as Error).message);
  }
  const r = await runUnit(store, familyOf(store.plan.family), level, index);
  console.error(`${level}[${index}] ${r.status} (${r.seconds.toFixed(1)} s, key ${r.key.slice(0, 12)})`);
  return r.status === "held-elsewhere" ? 1 : 0;
}

async function cmdImport(f: Flags): Promise<number> {
  const root = needStore(f);
  const from = str(f, "from") ?? fail("--from OLD is required: the run store to take finished units from");
  const target = await openOrCreate(f, root);
  const r = await importUnits(target, await RunStore.open(resolve(from)));
  const n = Object.values(r.imported).reduce((a, b) => a + b, 0);
  console.log(
    `imported ${n} unit(s) (${
      Object.entries(r.imported).map(([l, k]) => `${l} ${k}`).join(", ") || "none"
    }); ` +
      `${r.alreadyDone} already done; ${r.linked} file(s) hard-linked, ${r.copied} copied`,
  );
  return 0;
}

const USAGE = "usage: bkd plan|run|status|collect|unit|import [flags]  (see the header of tools/bkd.ts)";

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: Object.fromEntries([
      ...[
        "store",
        "executor",
        "workers",
        "throttle",
        "image",
        "pvc",
        "mount",
        "runs-dir",
        "level",
        "index",
        "from",
      ]
        .map((k) => [k, { type: "string" }]),
      ...SPEC_FLAGS.map((k) => [k, { type: "string" }]),
      ["sbatch-opt", { type: "string", multiple: true }],
      ["set", { type: "string", multiple: true }],
      ["apply", { type: "boolean" }],
      ["wait", { type: "boolean" }],
      ["all", { type: "boolean" }],
    ]),
  });
  const f = values as Flags;
  switch (cmd) {
    case "plan":
      await cmdPlan(f);
      return 0;
    case "import":
      return await cmdImport(f);
    case "run":
      return await cmdRun(f);
    case "status":
      return await cmdStatus(f);
    case "collect":
      return await cmdCollect(f);
    case "unit":
      return await cmdUnit(f);
    default:
      fail(cmd ? `unknown command "${cmd}". ${USAGE}` : USAGE);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    const input = e instanceof InputError || (e as Error).name === "RunStoreError" ||
      (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`bkd: ${(e as Error).message}`);
    Deno.exit(input ? 2 : 1);
  }
}
