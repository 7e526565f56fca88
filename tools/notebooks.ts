/**
 * Run the kit's notebooks headlessly.
 *
 *   deno run -A tools/notebooks.ts run [nb.ipynb ...] [--scale smoke|laptop|paper] [-p k=v ...]
 *                                      [--out results/notebooks] [--timeout S]
 *   deno run -A tools/notebooks.ts list
 *
 * Each notebook goes through tools/run_notebook.py (nbclient + the repo's deno-bkd kernelspec,
 * immune to Deno's output-after-idle race). The executed copy lands in
 * `<out>/<name>.<scale>.ipynb` when every `-p` value equals the notebook's default, else in
 * `<out>/<name>.<param>-<value>[...].<scale>.ipynb` (the parameters that differ from the defaults,
 * by name), so runs with different parameters never overwrite each other; the source notebook is
 * never touched. While a notebook runs, its cell, elapsed time and progress bars show on stderr (one
 * updating line on a terminal, a line every ~10 s otherwise). One failing notebook does not stop the
 * others, but the exit code says something failed.
 */
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseScale, type Scale } from "../lib/scale.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// Debian's python: the pyenv python CI puts first on PATH cannot import nbclient.
const PYTHON = Deno.env.get("BKD_PYTHON") ?? "/usr/bin/python3";
const RUNNER = join(REPO, "tools", "run_notebook.py");

interface RunOptions {
  notebooks: string[];
  scale: Scale;
  params: string[];
  out: string;
  timeout?: number;
}

const USAGE = `usage:
  deno run -A tools/notebooks.ts run [notebooks...] [--scale smoke|laptop|paper] [-p name=value ...]
                                     [--out results/notebooks] [--timeout seconds-per-cell]
  deno run -A tools/notebooks.ts list`;

/** notebooks/*.ipynb in name order (the numeric prefixes give the reading order). */
function defaultNotebooks(): string[] {
  const dir = join(REPO, "notebooks");
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".ipynb"))
      .map((e) => e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort().map((n) => join(dir, n));
}

function parseArgs(args: string[]): RunOptions {
  const opts: RunOptions = {
    notebooks: [],
    // BKD_SCALE lets CI or a shell pick the scale without editing commands; laptop is the default.
    scale: parseScale(Deno.env.get("BKD_SCALE")),
    params: [],
    out: join(REPO, "results", "notebooks"),
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--scale") opts.scale = parseScale(value());
    else if (a.startsWith("--scale=")) opts.scale = parseScale(a.slice(8));
    else if (a === "-p" || a === "--param") opts.params.push(value());
    else if (a === "--out") opts.out = resolve(value());
    else if (a.startsWith("--out=")) opts.out = resolve(a.slice(6));
    else if (a === "--timeout") {
      opts.timeout = Number(value());
      if (!(opts.timeout > 0)) throw new Error("--timeout needs a positive number of seconds");
    } else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else opts.notebooks.push(resolve(a));
  }
  if (opts.params.some((p) => p.startsWith("scale="))) {
    throw new Error("use --scale, not -p scale=..., so the output name matches the scale");
  }
  if (opts.notebooks.length === 0) opts.notebooks = defaultNotebooks();
  return opts;
}

/** A `-p name=value` value as the runner reads it: JSON when it parses, else the plain string. */
function paramValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Defaults of the notebook's parameters cell: `let name = <JSON literal>;` lines (other forms are
 * left out, so a parameter given for them always counts as non-default).
 */
export function parameterDefaults(notebookJson: string): Map<string, unknown> {
  let nb: { cells?: { metadata?: { tags?: string[] }; source?: string | string[] }[] };
  try {
    nb = JSON.parse(notebookJson);
  } catch {
    return new Map(); // not JSON: the runner reports it
  }
  const cell = nb.cells?.find((c) => c.metadata?.tags?.includes("parameters"));
  const out = new Map<string, unknown>();
  if (!cell) return out;
  const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source ?? "";
  for (
    const m of source.matchAll(/\b(?:let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*([^;\n]+?)\s*;?\s*(?:\/\/.*)?$/gm)
  ) {
    try {
      out.set(m[1], JSON.parse(m[2]));
    } catch { /* not a JSON literal: no known default */ }
  }
  return out;
}

/** File-name piece for one parameter value: safe characters only, long values shortened. */
function valueSlug(v: unknown): string {
  const text = typeof v === "string" ? v : JSON.stringify(v);
  const slug = text.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+|[._]+$/g, "") || "_";
  if (slug.length <= 32) return slug;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${slug.slice(0, 23)}~${h.toString(16).padStart(8, "0")}`;
}

/**
 * Executed copy's name: `<name>.<scale>.ipynb`, with `.<param>-<value>` pieces (sorted by name)
 * before the scale for every parameter whose value differs from the notebook's default.
 */
export function executedName(nbPath: string, notebookJson: string, scale: Scale, params: string[]): string {
  const defaults = parameterDefaults(notebookJson);
  const given = new Map<string, unknown>();
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq > 0) given.set(p.slice(0, eq).trim(), paramValue(p.slice(eq + 1)));
  }
  const pieces = [...given.entries()]
    .filter(([k, v]) => !defaults.has(k) || JSON.stringify(defaults.get(k)) !== JSON.stringify(v))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `.${k}-${valueSlug(v)}`);
  return `${basename(nbPath, ".ipynb")}${pieces.join("")}.${scale}.ipynb`;
}

/** Execute one notebook; resolves to whether it succeeded. The runner's output streams through. */
async function runOne(nb: string, opts: RunOptions): Promise<{ ok: boolean; seconds: number; out: string }> {
  let text = "{}";
  try {
    text = await Deno.readTextFile(nb);
  } catch { /* the runner reports a missing or unreadable notebook itself */ }
  const out = join(opts.out, executedName(nb, text, opts.scale, opts.params));
  const args = [RUNNER, nb, out, "-p", `scale=${opts.scale}`];
  for (const p of opts.params) args.push("-p", p);
  if (opts.timeout !== undefined) args.push("--timeout", String(opts.timeout));
  const jupyterPath = [join(REPO, "tools", "jupyter"), Deno.env.get("JUPYTER_PATH")].filter(Boolean);
  const t0 = performance.now();
  const status = await new Deno.Command(PYTHON, {
    args,
    // BKD_NOTEBOOK names the notebook in every run record of this execution (lib/results/record.ts).
    env: { JUPYTER_PATH: jupyterPath.join(":"), BKD_SCALE: opts.scale, BKD_NOTEBOOK: basename(nb) },
    // stderr stays the caller's: the runner draws its progress line there (a terminal gets one
    // redrawn line, a log gets a line every ~10 s).
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return { ok: status.success, seconds: (performance.now() - t0) / 1000, out };
}

async function run(args: string[]): Promise<number> {
  const opts = parseArgs(args);
  if (opts.notebooks.length === 0) {
    console.log("no notebooks to run");
    return 0;
  }
  await Deno.mkdir(opts.out, { recursive: true });
  let failed = 0;
  for (const nb of opts.notebooks) {
    const r = await runOne(nb, opts);
    if (!r.ok) failed++;
    const status = r.ok ? "ok    " : "FAILED";
    console.log(
      `${status} ${r.seconds.toFixed(1).padStart(7)} s  ${basename(nb)} -> ${relative(Deno.cwd(), r.out)}`,
    );
  }
  console.log(`notebooks: ${opts.notebooks.length - failed} ok, ${failed} failed (scale ${opts.scale})`);
  return failed === 0 ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === "run") return await run(rest);
    if (cmd === "list") {
      for (const nb of defaultNotebooks()) console.log(basename(nb));
      return 0;
    }
  } catch (e) {
    console.error(`notebooks.ts: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
  console.error(USAGE);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
