/**
 * The command line of one unit, the same for every executor:
 * `deno run -A <repo>/tools/bkd.ts unit --store <dir> --level <name> [--index <i>]`. Without
 * `--index` the unit reads its index from `SLURM_ARRAY_TASK_ID` or `JOB_COMPLETION_INDEX`.
 *
 * @module
 */
import { resolve } from "node:path";
import { repoRoot } from "../util/paths.ts";

/** Environment variables a scheduler puts a unit's index in, checked in this order. */
export const INDEX_ENV_VARS = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] as const;

/** Options of {@link unitCommand}. */
export interface UnitCommandOptions {
  /** Deno executable (default: this process's). */
  deno?: string;
  /** Path of the CLI (default `<repo>/tools/bkd.ts`). */
  cli?: string;
}

/** argv of a unit; `index` omitted: taken from the scheduler's environment. */
export function unitCommand(
  store: string,
  level: string,
  index?: number,
  opts: UnitCommandOptions = {},
): string[] {
  const argv = [
    opts.deno ?? Deno.execPath(),
    "run",
    "-A",
    opts.cli ?? `${repoRoot()}/tools/bkd.ts`,
    "unit",
    "--store",
    resolve(store),
    "--level",
    level,
  ];
  if (index !== undefined) argv.push("--index", String(index));
  return argv;
}

/** The unit index from `--index` or the scheduler's environment; an error says which were tried. */
export function unitIndexFrom(flag: string | undefined, env: (k: string) => string | undefined): number {
  const raw = flag ?? INDEX_ENV_VARS.map(env).find((v) => v !== undefined && v !== "");
  if (raw === undefined) {
    throw new Error(
      `no unit index: pass --index <i>, or run under Slurm/Kubernetes (${INDEX_ENV_VARS.join(", ")})`,
    );
  }
  const i = Number(raw);
  if (!Number.isInteger(i) || i < 0) {
    throw new Error(`unit index must be a non-negative integer, got "${raw}"`);
  }
  return i;
}

/** Quote argv for a POSIX shell. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => /^[A-Za-z0-9_\/.:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
}
