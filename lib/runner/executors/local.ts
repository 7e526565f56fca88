/**
 * The local executor: up to `workers` unit processes at a time on this machine, level by level.
 * Each unit is its own process (`unitCommand`), its output in `<store>/logs/<level>-<index>.log`.
 * A level starts when the previous one has no failed unit; a failure stops the run after the
 * running units of that level end, naming their logs.
 *
 * @module
 */
import { unitCommand } from "../command.ts";
import type { RunStore } from "../store.ts";
import type { UnitReport } from "./in_process.ts";

/** Options of {@link runLocal}. */
export interface LocalOptions {
  /** Concurrent unit processes (default 2). */
  workers?: number;
  /** argv of a unit (default {@link unitCommand}). */
  command?: (level: string, index: number) => string[];
  /** Extra environment for the unit processes. */
  env?: Record<string, string>;
  /** Called when a unit process ends. */
  onUnit?: (r: UnitReport) => void;
  /** Called with a unit's child process once it started (e.g. to kill it). */
  onStart?: (level: string, index: number, child: Deno.ChildProcess) => void;
}

/** Run the plan's unfinished units as processes; resolves when all are done or one level failed. */
export async function runLocal(store: RunStore, opts: LocalOptions = {}): Promise<UnitReport[]> {
  const workers = Math.max(1, opts.workers ?? 2);
  const command = opts.command ?? ((l: string, i: number) => unitCommand(store.root, l, i));
  const reports: UnitReport[] = [];
  for (const level of store.plan.levels) {
    const pending: number[] = [];
    for (let i = 0; i < level.keys.length; i++) if (!(await store.isDone(level.keys[i]))) pending.push(i);
    const failed: UnitReport[] = [];
    let next = 0;
    const worker = async () => {
      while (next < pending.length) {
        const index = pending[next++];
        const log = `${store.root}/logs/${level.name}-${index}.log`;
        const t0 = performance.now();
        await Deno.writeTextFile(log, "");
        const out = await Deno.open(log, { append: true });
        const err = await Deno.open(log, { append: true });
        const argv = command(level.name, index);
        const child = new Deno.Command(argv[0], {
          args: argv.slice(1),
          stdout: "piped",
          stderr: "piped",
          stdin: "null",
          env: opts.env,
        }).spawn();
        opts.onStart?.(level.name, index, child);
        const [status] = await Promise.all([
          child.status,
          child.stdout.pipeTo(out.writable),
          child.stderr.pipeTo(err.writable),
        ]);
        const ok = status.success && await store.isDone(level.keys[index]);
        const rep: UnitReport = {
          level: level.name,
          index,
          status: ok ? "ran" : "failed",
          seconds: (performance.now() - t0) / 1000,
          ...(ok
            ? {}
            : { detail: `exit ${status.code}${status.signal ? ` (${status.signal})` : ""}; log ${log}` }),
        };
        if (!ok) failed.push(rep);
        reports.push(rep);
        opts.onUnit?.(rep);
      }
    };
    await Promise.all(Array.from({ length: Math.min(workers, pending.length) }, worker));
    if (failed.length > 0) break;
  }
  return reports;
}
