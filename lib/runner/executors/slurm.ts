/**
 * The Slurm executor: one `sbatch --array=<indices>%<throttle>` per level, chained with
 * `--dependency=afterok:<job ids of the levels it reads>`, resources per unit kind as `-c`, `--mem`,
 * `--time`, extra options (partition, account, QOS, …) passed through. Each array task runs the unit
 * command without `--index`: the unit reads `SLURM_ARRAY_TASK_ID`.
 *
 * Resubmitting a run submits only units that have no done marker and are not queued or running now.
 * Tasks of this run left pending with reason `DependencyNeverSatisfied` (a level whose unit failed or
 * was cancelled), and pending tasks of a level whose dependencies get new jobs, are cancelled and
 * submitted again behind the new jobs.
 *
 * Job names are `bkd-<run id>-<level>`, the run id a short hash of the plan, so `squeue --name`
 * finds a run's jobs. Every submission is appended to `<store>/slurm.jsonl`.
 *
 * @module
 */
import { shellQuote, unitCommand } from "../command.ts";
import { hashOf } from "../hash.ts";
import { type LevelPlan, planIdentity, type RunPlan } from "../plan.ts";
import type { RunStore } from "../store.ts";

/** Options of {@link submitSlurm}. */
export interface SlurmOptions {
  /** Most array tasks of one level running at once (`%N`); default: no limit. */
  throttle?: number;
  /** Extra `sbatch` options, e.g. ["--partition=cpu", "--account=lab", "--qos=normal"]. */
  sbatchOptions?: string[];
  /** Unit argv without `--index` (default {@link unitCommand}). */
  command?: (level: string) => string[];
}

/** One queued array element of this run. */
export interface QueuedTask {
  jobId: string;
  /** Array job id (the part before `_`). */
  arrayJobId: string;
  index: number;
  level: string;
  state: string;
  reason: string;
}

/** What one submission did. */
export interface SlurmSubmission {
  level: string;
  jobId: string;
  indices: number[];
  argv: string[];
}

/** Short id of a run (names its jobs): its identity, so re-measured estimates still find queued jobs. */
export function runId(plan: RunPlan): string {
  return hashOf(planIdentity(plan)).slice(0, 10);
}

/** Slurm job name of a level. */
export function jobName(plan: RunPlan, level: string): string {
  return `bkd-${runId(plan)}-${level}`;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `${cmd} not found: the Slurm executor needs Slurm's client tools on PATH (sbatch, squeue)`,
      );
    }
    throw e;
  }
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr).trim()}`);
  return dec.decode(out.stdout);
}

/** Compress sorted indices to Slurm's array syntax: [0,1,2,5] → "0-2,5". */
export function arraySpec(indices: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < indices.length;) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j] + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** This run's array elements in the queue (pending or running), one per element. */
export async function queuedTasks(plan: RunPlan): Promise<QueuedTask[]> {
  const byName = new Map(plan.levels.map((l) => [jobName(plan, l.name), l.name]));
  const text = await sh("squeue", ["-h", "-r", "--name", [...byName.keys()].join(","), "-o", "%i|%T|%r|%j"]);
  const out: QueuedTask[] = [];
  for (const line of text.split("\n")) {
    const [jobId, state, reason, name] = line.trim().split("|");
    if (!jobId || !byName.has(name)) continue;
    const [arrayJobId, idx] = jobId.split("_");
    if (idx === undefined || !/^\d+$/.test(idx)) continue;
    out.push({ jobId, arrayJobId, index: Number(idx), level: byName.get(name)!, state, reason });
  }
  return out;
}

/** sbatch argv for one level's array. */
export function sbatchArgs(
  store: RunStore,
  level: LevelPlan,
  indices: number[],
  dependsOn: string[],
  opts: SlurmOptions,
): string[] {
  const r = level.resources;
  const throttle = opts.throttle ? `%${opts.throttle}` : "";
  const argv = (opts.command ?? ((l: string) => unitCommand(store.root, l)))(level.name);
  return [
    "--parsable",
    `--job-name=${jobName(store.plan, level.name)}`,
    `--array=${arraySpec(indices)}${throttle}`,
    `--cpus-per-task=${r.cores}`,
    `--mem=${r.memoryMB}M`,
    `--time=${r.timeMinutes}`,
    `--output=${store.root}/logs/${level.name}-%a.slurm-%A.log`,
    ...(dependsOn.length > 0
      ? [`--dependency=afterok:${dependsOn.join(":")}`, "--kill-on-invalid-dep=no"]
      : []),
    ...(opts.sbatchOptions ?? []),
    `--wrap=exec ${shellQuote(argv)}`,
  ];
}

/** Submit every unfinished unit that is not queued (see the module doc). */
export async function submitSlurm(store: RunStore, opts: SlurmOptions = {}): Promise<SlurmSubmission[]> {
  const plan = store.plan;
  let queued = await queuedTasks(plan);
  const cancel = async (tasks: QueuedTask[]) => {
    if (tasks.length === 0) return;
    await sh("scancel", tasks.map((t) => t.jobId));
    const gone = new Set(tasks.map((t) => t.jobId));
    queued = queued.filter((t) => !gone.has(t.jobId));
  };
  await cancel(
    queued.filter((t) => t.state === "PENDING" && t.reason.startsWith("DependencyNeverSatisfied")),
  );
  const submittedJobs = new Map<string, string[]>();
  const subs: SlurmSubmission[] = [];
  for (const level of plan.levels) {
    // A pending task waiting on a level that gets new jobs now would wait on the old jobs only:
    // cancel it and submit it again behind the new ones.
    if (level.deps.some((d) => submittedJobs.has(d))) {
      await cancel(queued.filter((t) => t.level === level.name && t.state === "PENDING"));
    }
    const inQueue = new Set(queued.filter((t) => t.level === level.name).map((t) => t.index));
    const indices: number[] = [];
    for (let i = 0; i < level.keys.length; i++) {
      if (!inQueue.has(i) && !(await store.isDone(level.keys[i]))) indices.push(i);
    }
    if (indices.length === 0) continue;
    const deps = new Set<string>();
    for (const d of level.deps) {
      for (const t of queued) if (t.level === d) deps.add(t.arrayJobId);
      for (const j of submittedJobs.get(d) ?? []) deps.add(j);
    }
    const argv = sbatchArgs(store, level, indices, [...deps], opts);
    const jobId = (await sh("sbatch", argv)).trim().split(";")[0];
    if (!/^\d+$/.test(jobId)) throw new Error(`sbatch printed "${jobId}" instead of a job id`);
    submittedJobs.set(level.name, [...(submittedJobs.get(level.name) ?? []), jobId]);
    const sub = { level: level.name, jobId, indices, argv };
    subs.push(sub);
    await Deno.writeTextFile(
      `${store.root}/slurm.jsonl`,
      JSON.stringify({ ...sub, at: new Date().toISOString() }) + "\n",
      { append: true },
    );
  }
  return subs;
}
