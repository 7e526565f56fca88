/**
 * Build the static report of executed notebooks (see lib/report/):
 *
 *   deno task report [--scale smoke|laptop|paper] [notebook ...] [--notebooks results/notebooks]
 *                    [--runs results/runs] [--out results/report/<scale>] [--code collapsed|shown|hidden]
 *                    [--mathjax /usr/share/javascript/mathjax] [--no-readme]
 *
 * At laptop scale over all notebooks (no names) it also rewrites README.md's "measured so far" table
 * from the same summary rows (between its marker comments); `--no-readme` leaves README.md alone.
 *
 * Notebook names (`10_db3_mnist`, or a path to its .ipynb) limit the report to those runs.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import {
  buildSite,
  type CodeMode,
  measuredMarkdown,
  normalizeTable,
  readmeBlock,
  spliceReadme,
  writeSite,
} from "../lib/report/mod.ts";
import { parseScale, type Scale } from "../lib/scale.ts";
import { repoRoot, resultsPath } from "../lib/util/paths.ts";

const USAGE =
  `usage: deno task report [--scale smoke|laptop|paper] [notebook ...] [--notebooks DIR] [--runs DIR]
                        [--out DIR] [--code collapsed|shown|hidden] [--mathjax DIR] [--no-readme]`;

interface Args {
  scale: Scale;
  names: string[];
  notebooks?: string;
  runs?: string;
  out?: string;
  code: CodeMode;
  mathjax?: string;
  readme: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    scale: parseScale(Deno.env.get("BKD_SCALE")),
    names: [],
    code: "collapsed",
    readme: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? arg.split(/=(.*)/s, 2)
      : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === "--scale") a.scale = parseScale(value());
    else if (flag === "--notebooks") a.notebooks = resolve(value());
    else if (flag === "--runs") a.runs = resolve(value());
    else if (flag === "--out") a.out = resolve(value());
    else if (flag === "--mathjax") a.mathjax = resolve(value());
    else if (flag === "--no-readme") a.readme = false;
    else if (flag === "--code") {
      const v = value();
      if (!["collapsed", "shown", "hidden"].includes(v)) {
        throw new Error(`--code ${v}: use collapsed, shown or hidden`);
      }
      a.code = v as CodeMode;
    } else if (flag === "-h" || flag === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else if (flag.startsWith("-")) throw new Error(`unknown option ${flag}\n${USAGE}`);
    else a.names.push(flag);
  }
  return a;
}

if (import.meta.main) {
  try {
    const a = parseArgs(Deno.args);
    const notebooksDir = a.notebooks ?? resultsPath("notebooks");
    const runsDir = a.runs ?? (a.scale === "smoke" ? resultsPath("smoke", "runs") : resultsPath("runs"));
    const outDir = a.out ?? join(resultsPath("report"), a.scale);
    const command = ["deno task report", `--scale ${a.scale}`, ...a.names].join(" ");
    const site = await buildSite({
      notebooksDir,
      runsDir,
      outDir,
      scale: a.scale,
      names: a.names.length ? a.names : undefined,
      code: a.code,
      mathjaxDir: a.mathjax,
      command,
    });
    const w = await writeSite(outDir, site);
    const rel = relative(Deno.cwd(), outDir) || ".";
    console.log(
      `report: ${site.pages.length} notebook pages, ${site.rows} summary rows, ${w.files} files, ` +
        `${(w.bytes / 1e6).toFixed(2)} MB${site.mathjax ? " (MathJax copied)" : ""} -> ${rel}/index.html`,
    );
    if (a.readme && a.scale === "laptop" && a.names.length === 0) {
      const readme = join(repoRoot(), "README.md");
      const before = await Deno.readTextFile(readme);
      const table = measuredMarkdown(site.entries);
      const same = normalizeTable(readmeBlock(before) ?? "") === normalizeTable(table);
      if (!same) {
        await Deno.writeTextFile(readme, spliceReadme(before, table));
        await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", readme] }).output();
      }
      console.log(`report: README.md measured table ${same ? "unchanged" : "rewritten"}`);
    }
    if (site.excluded.length) console.log(`report: left out by their metadata: ${site.excluded.join(", ")}`);
  } catch (e) {
    console.error(`report: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
