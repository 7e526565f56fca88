/**
 * The Kubernetes executor: a manifest generator. Each level becomes one Indexed Job
 * (`completionMode: Indexed`, `completions` = its units, `parallelism`), whose pods run the same unit
 * command as every other executor with the index from `JOB_COMPLETION_INDEX`, the run store on a
 * shared volume (a PersistentVolumeClaim mounted at the store's path).
 *
 * Retries: `backoffLimitPerIndex` (a failed index is retried on its own, up to the limit) with a
 * `podFailurePolicy` that fails the index at once on exit code 2 (bad input: retrying cannot help);
 * for clusters before Kubernetes 1.29 set `perIndex: false` to get a plain `backoffLimit` instead.
 *
 * Levels are chained by the CLI: `bkd run --executor k8s --apply` applies a level's Job and waits
 * (`kubectl wait --for=condition=complete`) before applying the next. Units of a level whose
 * dependencies are not done fail and are retried, and done units exit at once, so re-applying a run
 * recomputes only what is missing.
 *
 * @module
 */
import { unitCommand } from "../command.ts";
import type { RunPlan } from "../plan.ts";
import { runId } from "./slurm.ts";

/** Options of {@link k8sManifests}. */
export interface K8sOptions {
  /** Container image holding the kit and Deno. */
  image: string;
  /** PersistentVolumeClaim holding the run store (ReadWriteMany for more than one node). */
  pvc: string;
  /** Path of the run store inside the container (the claim is mounted at it). */
  storePath: string;
  /** Namespace (default: kubectl's current). */
  namespace?: string;
  /** Pods running at once per level (default: all units). */
  parallelism?: number;
  /** Retries per index (default 3). */
  backoffLimit?: number;
  /** `backoffLimitPerIndex` + `podFailurePolicy` (default true); false: plain `backoffLimit`. */
  perIndex?: boolean;
  /** Unit argv without `--index` (default: `deno run -A /app/tools/bkd.ts unit …`). */
  command?: (level: string) => string[];
}

/** One Indexed Job per level, in dependency order (plain objects; JSON is valid YAML). */
export function k8sManifests(plan: RunPlan, opts: K8sOptions): Record<string, unknown>[] {
  const id = runId(plan);
  const retries = opts.backoffLimit ?? 3;
  const perIndex = opts.perIndex ?? true;
  return plan.levels.map((level) => {
    const argv = opts.command?.(level.name) ??
      unitCommand(opts.storePath, level.name, undefined, { deno: "deno", cli: "/app/tools/bkd.ts" });
    const completions = level.keys.length;
    const r = level.resources;
    return {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: {
        name: `bkd-${id}-${level.name}`,
        ...(opts.namespace ? { namespace: opts.namespace } : {}),
        labels: { "app.kubernetes.io/name": "boundary-kd", "bkd/run": id, "bkd/level": level.name },
      },
      spec: {
        completionMode: "Indexed",
        completions,
        parallelism: Math.min(completions, opts.parallelism ?? completions),
        ...(perIndex
          ? {
            backoffLimitPerIndex: retries,
            podFailurePolicy: {
              rules: [{
                action: "FailIndex",
                onExitCodes: { containerName: "unit", operator: "In", values: [2] },
              }],
            },
          }
          : { backoffLimit: retries * completions }),
        template: {
          metadata: { labels: { "bkd/run": id, "bkd/level": level.name } },
          spec: {
            restartPolicy: "Never",
            activeDeadlineSeconds: r.timeMinutes * 60,
            containers: [{
              name: "unit",
              image: opts.image,
              command: argv,
              resources: {
                requests: { cpu: String(r.cores), memory: `${r.memoryMB}Mi` },
                limits: { memory: `${r.memoryMB}Mi` },
              },
              volumeMounts: [{ name: "run-store", mountPath: opts.storePath }],
            }],
            volumes: [{ name: "run-store", persistentVolumeClaim: { claimName: opts.pvc } }],
          },
        },
      },
    };
  });
}
