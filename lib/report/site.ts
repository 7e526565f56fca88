/**
 * Build the whole report site in memory (index, one page per notebook, assets, MathJax subset) and
 * write it to a folder. Same inputs → byte-identical folder: files are named by content or by
 * notebook name, pages carry no export timestamp, and the folder is replaced as a whole.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { Scale } from "../scale.ts";
import { AssetStore } from "./assets.ts";
import { CATALOG } from "./catalog.ts";
import { MATHJAX_ENTRY, pageShell } from "./html.ts";
import { type IndexEntry, renderIndex } from "./index_page.ts";
import { listExecutedNotebooks } from "./notebook.ts";
import { type CodeMode, renderNotebookPage, sectionAnchor } from "./page.ts";
import { recordsOfNotebook } from "./records.ts";
import { summaryRows } from "./summary.ts";

/** Debian's libjs-mathjax (MathJax 2.7). */
export const SYSTEM_MATHJAX_DIR = "/usr/share/javascript/mathjax";

/**
 * The parts of MathJax 2.7 a page needs for TeX input and SVG output with the TeX fonts (about
 * 2 MB of the package's 54 MB): the loader, the combined config, its lazily loaded pieces.
 */
export const MATHJAX_PARTS: readonly string[] = [
  "MathJax.js",
  "config/TeX-AMS_SVG.js",
  "jax/input/TeX",
  "jax/element",
  "jax/output/SVG/config.js",
  "jax/output/SVG/jax.js",
  "jax/output/SVG/autoload",
  "jax/output/SVG/fonts/TeX",
  "extensions/TeX",
  "extensions/MathEvents.js",
  "extensions/MathMenu.js",
  "extensions/MathZoom.js",
  "extensions/tex2jax.js",
];

/** Options of {@link buildSite}. */
export interface BuildOptions {
  /** Folder of executed notebooks (`<name>.<scale>.ipynb`). */
  notebooksDir: string;
  /** Folder of run records (`<experiment>/<id>.json`, `<experiment>.csv`). */
  runsDir: string;
  /** Folder the site will be written to (links to records are relative to it). */
  outDir: string;
  /** Which scale. */
  scale: Scale;
  /** Only these notebooks. */
  names?: string[];
  /** Code cells collapsed (default), shown or hidden. */
  code?: CodeMode;
  /** Where MathJax is installed (default Debian's). */
  mathjaxDir?: string;
  /** The command that rebuilds the report, printed on the index. */
  command?: string;
}

/** A built site, not yet written. */
export interface BuiltSite {
  /** Site-relative path → content. */
  files: Map<string, string | Uint8Array>;
  /** Notebooks with pages. */
  pages: string[];
  /** Notebooks left out by their metadata (`boundary_kd.report: false`). */
  excluded: string[];
  /** Number of summary rows. */
  rows: number;
  /** The index entries (summary rows per notebook), e.g. for the README's table. */
  entries: IndexEntry[];
  /** Whether MathJax was copied (some page has maths). */
  mathjax: boolean;
}

async function copyTree(src: string, rel: string, files: Map<string, string | Uint8Array>, prefix: string) {
  const path = join(src, rel);
  const st = await Deno.stat(path);
  if (st.isFile) {
    files.set(`${prefix}/${rel}`, await Deno.readFile(path));
    return;
  }
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  for (const n of names.sort()) await copyTree(src, `${rel}/${n}`, files, prefix);
}

/** Build every file of the report in memory. */
export async function buildSite(opts: BuildOptions): Promise<BuiltSite> {
  const outDir = resolve(opts.outDir);
  const runsDir = resolve(opts.runsDir);
  const all = await listExecutedNotebooks(opts.notebooksDir, { scale: opts.scale, names: opts.names });
  const notebooks = all.filter((nb) => nb.inReport);
  const pages: Record<string, string> = Object.fromEntries(
    notebooks.map((nb) => [nb.name, `${nb.name}.html`]),
  );
  const assets = new AssetStore();
  const files = new Map<string, string | Uint8Array>();
  const entries: IndexEntry[] = [];
  let maths = false;
  for (const nb of notebooks) {
    const spec = CATALOG[nb.name];
    const records = await recordsOfNotebook(nb, spec?.experiments ?? [], runsDir);
    const pageFile = join(outDir, pages[nb.name]);
    const page = renderNotebookPage(nb, records, {
      pageFile,
      root: "",
      assets,
      code: opts.code ?? "collapsed",
      pages,
    });
    maths ||= page.maths;
    files.set(
      pages[nb.name],
      pageShell({ title: `${page.title} (${nb.scale})`, body: page.body, root: "", maths: page.maths }),
    );
    const rows = (spec?.rows ?? []).flatMap((s) => summaryRows(s, records))
      .map((row) => ({ row, anchor: sectionAnchor(page.headings, row.section) }));
    entries.push({ notebook: nb, page: pages[nb.name], title: page.title, rows, records: records.length });
  }
  const indexBody = renderIndex(entries, {
    scale: opts.scale,
    indexFile: join(outDir, "index.html"),
    command: opts.command ?? `deno task report --scale ${opts.scale}`,
    notExecuted: opts.names?.length
      ? []
      : Object.keys(CATALOG).filter((n) => !all.some((nb) => nb.name === n)).sort(),
  });
  files.set(
    "index.html",
    pageShell({ title: `boundary-kd results (${opts.scale})`, body: indexBody, root: "", maths: false }),
  );
  for (const [path, bytes] of assets.files) files.set(path, bytes);
  if (maths) {
    const dir = opts.mathjaxDir ?? SYSTEM_MATHJAX_DIR;
    try {
      await Deno.stat(join(dir, "MathJax.js"));
    } catch {
      throw new Error(
        `a page has TeX maths but MathJax is not at ${dir}; install Debian's libjs-mathjax ` +
          "(`bash tools/setup.sh` does) or pass --mathjax <folder of MathJax 2.7>",
      );
    }
    for (const part of MATHJAX_PARTS) await copyTree(dir, part, files, MATHJAX_ENTRY.split("/")[0]);
  }
  files.set(".report-site", "boundary-kd report folder: `deno task report` replaces everything in it.\n");
  return {
    files,
    pages: notebooks.map((nb) => nb.name),
    excluded: all.filter((nb) => !nb.inReport).map((nb) => nb.name),
    rows: entries.reduce((a, e) => a + e.rows.length, 0),
    entries,
    mathjax: maths,
  };
}

/**
 * Write a built site to `outDir`, replacing an earlier report there. A non-empty folder that is not
 * a report (no `.report-site` marker) is never touched: that is an error naming the folder.
 */
export async function writeSite(outDir: string, site: BuiltSite): Promise<{ files: number; bytes: number }> {
  let exists = false;
  let empty = true;
  try {
    for await (const _ of Deno.readDir(outDir)) {
      empty = false;
      break;
    }
    exists = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (exists && !empty) {
    try {
      await Deno.stat(join(outDir, ".report-site"));
    } catch {
      throw new Error(
        `${outDir} is not empty and holds no .report-site marker, so it is not an earlier report; ` +
          "pick another --out folder or empty this one yourself",
      );
    }
    await Deno.remove(outDir, { recursive: true });
  }
  let bytes = 0;
  for (const path of [...site.files.keys()].sort()) {
    const full = join(outDir, path);
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    const data = site.files.get(path)!;
    const buf = typeof data === "string" ? new TextEncoder().encode(data) : data;
    bytes += buf.length;
    await Deno.writeFile(full, buf);
  }
  return { files: site.files.size, bytes };
}
