/**
 * Run the kit's notebooks headlessly.
 *
 *   deno run -A tools/notebooks.ts run [nb.ipynb ...] [--scale smoke|laptop|paper] [-p k=v ...]
 *                                      [--out results/notebooks] [--timeout S]
 *   deno run -A tools/notebooks.ts list
 *
 * Each notebook goes through tools/run_notebook.py (nbclient + the repo's deno-bkd kernelspec,
 * immune to Deno's output-after-idle race). The executed copy lands in
 * `<out>/<name>.<scale>.ipynb`; the source notebook is never touched. One failing notebook does
 * not stop the others, but the exit code says something failed.
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

/** Execute one notebook; resolves to whether it succeeded. The runner's output streams through. */
async function runOne(nb: string, opts: RunOptions): Promise<{ ok: boolean; seconds: number; out: string }> {
  const out = join(opts.out, `${basename(nb, ".ipynb")}.${opts.scale}.ipynb`);
  const args = [RUNNER, nb, out, "-p", `scale=${opts.scale}`];
  for (const p of opts.params) args.push("-p", p);
  if (opts.timeout !== undefined) args.push("--timeout", String(opts.timeout));
  const jupyterPath = [join(REPO, "tools", "jupyter"), Deno.env.get("JUPYTER_PATH")].filter(Boolean);
  const t0 = performance.now();
  const status = await new Deno.Command(PYTHON, {
    args,
    // BKD_NOTEBOOK names the notebook in every run record of this execution (lib/results/record.ts).
    env: { JUPYTER_PATH: jupyterPath.join(":"), BKD_SCALE: opts.scale, BKD_NOTEBOOK: basename(nb) },
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
