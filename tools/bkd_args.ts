/**
 * Argument helpers of `tools/bkd.ts`: flag parsing into a db3-label spec, input errors (exit 2) and
 * markdown tables.
 */
import { resolve } from "node:path";
import { parseScale, SCALES } from "../lib/scale.ts";
import { type Db3LabelOverride, type Db3LabelSpec, db3LabelSpec } from "../lib/experiments/db3_label_spec.ts";
import type { DatasetName } from "../lib/data/types.ts";
import { parseEngine } from "../lib/native/teacher_predictor.ts";

/** Datasets a db3-label run may use. */
export const DATASETS: DatasetName[] = ["mnist", "fmnist", "cifar10"];
/** Flags that make up a spec (their presence means "this spec", not "resume the store's"). */
export const SPEC_FLAGS = [
  "dataset",
  "scale",
  "seed",
  "n",
  "shard-size",
  "candidates",
  "engine",
  "teacher",
  "notebook",
  "methods",
  "seeds",
  "set",
];

/** Bad input: the CLI exits 2 (retrying cannot help). */
export class InputError extends Error {}

/** Throw an {@link InputError}. */
export function fail(msg: string): never {
  throw new InputError(msg);
}

/** A non-negative integer flag, or undefined when absent. */
export function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got "${v}"`);
  return n;
}

/** Parsed flags. */
export type Flags = Record<string, string | string[] | boolean | undefined>;

/** A string flag, or undefined. */
export function str(f: Flags, k: string): string | undefined {
  const v = f[k];
  return typeof v === "string" ? v : undefined;
}

/** The db3-label spec the flags describe (scale smoke and dataset mnist by default). */
export function specFrom(f: Flags): Db3LabelSpec {
  const dataset = (str(f, "dataset") ?? "mnist") as DatasetName;
  if (!DATASETS.includes(dataset)) fail(`unknown --dataset "${dataset}"; use one of ${DATASETS.join(", ")}`);
  const s = str(f, "scale") ?? "smoke";
  if (!SCALES.includes(s as never)) fail(`unknown --scale "${s}"; use one of ${SCALES.join(", ")}`);
  const e = str(f, "engine");
  const engine = e === undefined ? undefined : parseEngine(e) ?? fail(`unknown --engine "${e}"`);
  const override: Db3LabelOverride = {};
  const n = int(str(f, "n"), "n"), shard = int(str(f, "shard-size"), "shard-size");
  const cands = int(str(f, "candidates"), "candidates");
  if (n !== undefined) override.n = n;
  if (shard !== undefined) override.shardSize = shard;
  if (cands !== undefined) override.bd = { candidates: cands };
  const teacher = str(f, "teacher");
  return db3LabelSpec({
    dataset,
    scale: parseScale(s),
    seed: int(str(f, "seed"), "seed"),
    engine,
    override,
    ...(teacher !== undefined ? { teacher } : {}),
  });
}

/** A comma-separated list of non-negative integers (`--seeds 1,2,3`), or undefined when absent. */
export function intList(v: string | undefined, name: string): number[] | undefined {
  return v === undefined ? undefined : v.split(",").map((x) => int(x.trim(), name)!);
}

/**
 * `--set key=value` flags as one nested override: `student.epochs=20` → `{student: {epochs: 20}}`.
 * A value is read as JSON when it parses (numbers, booleans, arrays), else as a string. Whether a key
 * exists is checked by the settings table (`resolveSettings`).
 */
export function setOverrides(sets: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) fail(`--set ${s}: write --set key=value, e.g. --set student.epochs=20`);
    const path = s.slice(0, eq).split(".");
    const text = s.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    let o = out;
    for (const k of path.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
    o[path[path.length - 1]] = value;
  }
  return out;
}

/** The absolute `--store` folder; its absence is an input error. */
export function needStore(f: Flags): string {
  const s = str(f, "store");
  if (!s) fail("--store DIR is required: the run store folder (local disk or a shared file system)");
  return resolve(s);
}

/** Rows as a markdown table (numbers with thousands separators). */
export function mdTable(rows: Record<string, unknown>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const cell = (v: unknown) => typeof v === "number" ? v.toLocaleString("en-US") : String(v);
  return [
    `| ${cols.join(" | ")} |`,
    `| ${cols.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(" | ")} |`),
  ].join("\n");
}
