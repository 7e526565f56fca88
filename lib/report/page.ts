/**
 * One executed notebook → one report page: a header with the run's provenance (execution date and
 * wall time, parameters, kit version, git commit, run records linked relatively), then every cell
 * in the author's order — markdown rendered (a researcher's own notes stay where they wrote them),
 * code collapsed/shown/hidden, outputs inline.
 *
 * @module
 */
import type { AssetStore } from "./assets.ts";
import { esc, IdRegistry, relativeHref } from "./html.ts";
import { type Heading, renderMarkdown } from "./markdown.ts";
import { type ExecutedNotebook, nbText } from "./notebook.ts";
import { renderOutput } from "./outputs.ts";
import type { LocatedRecord } from "./records.ts";
import { formatDuration } from "./summary.ts";

/** How code cells appear. */
export type CodeMode = "collapsed" | "shown" | "hidden";

/** What rendering a page needs. */
export interface PageContext {
  /** Absolute path the page will be written to (for relative links to run records). */
  pageFile: string;
  /** Path from the page to the site root (`""` when pages sit at the root). */
  root: string;
  /** Shared asset store of the site. */
  assets: AssetStore;
  /** Code cell display. */
  code: CodeMode;
  /** Page file names of the other notebooks in the report, by notebook name (for `x.ipynb` links). */
  pages: Record<string, string>;
}

/** A rendered page body. */
export interface RenderedPage {
  /** Page title (the first heading, else the notebook name). */
  title: string;
  /** Body markup (without the shell). */
  body: string;
  /** Headings with their anchors, in order. */
  headings: Heading[];
  /** True when the page needs MathJax. */
  maths: boolean;
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** Links written as `other_notebook.ipynb` point at that notebook's page when it is in the report. */
function relinkNotebooks(html: string, pages: Record<string, string>): string {
  return html.replace(
    /href="(?:[^"]*\/)?([^"/]+?)(?:\.[a-z]+)?\.ipynb(#[^"]*)?"/g,
    (m, name: string, hash) => {
      const page = pages[name];
      return page ? `href="${page}${hash ?? ""}"` : m;
    },
  );
}

function provenance(nb: ExecutedNotebook, records: LocatedRecord[], ctx: PageContext): string {
  const ex = nb.execution;
  const items: [string, string][] = [];
  items.push([
    "notebook",
    `<code>${esc(ex.source ?? `notebooks/${nb.name}.ipynb`)}</code>, scale <b>${esc(nb.scale)}</b>`,
  ]);
  if (ex.started) {
    const wall = typeof ex.wall_seconds === "number" ? `, ${formatDuration(ex.wall_seconds)}` : "";
    const status = ex.status && ex.status !== "ok" ? ` — <b>status ${esc(ex.status)}</b>` : "";
    items.push(["executed", `${esc(ex.started)}${wall}${status}`]);
  } else {
    items.push(["executed", `<span class="muted">not recorded (not run by tools/notebooks.ts)</span>`]);
  }
  // Anything else the runner records (e.g. a commit or kit version, should it add them), shown as is.
  const shown = [
    "source",
    "started",
    "wall_seconds",
    "status",
    "failed_cell",
    "parameters",
    "late_messages_caught",
  ];
  for (const [k, v] of Object.entries(ex).sort(([a], [b]) => a.localeCompare(b))) {
    if (shown.includes(k) || v === null || typeof v === "object") continue;
    items.push([k.replace(/_/g, " "), `<code>${esc(String(v))}</code>`]);
  }
  const params = Object.entries(ex.parameters ?? {}).map(([k, v]) => `${esc(k)} = ${esc(JSON.stringify(v))}`);
  if (params.length) items.push(["parameters", params.join(", ")]);
  const kits = unique(records.map((r) => r.record.versions?.kit).filter(Boolean)).sort();
  items.push([
    "kit version",
    kits.length ? kits.map((k) => esc(String(k))).join(", ") : `<span class="muted">no run records</span>`,
  ]);
  const commits = unique(
    records.map((r) =>
      r.record.gitCommit
        ? `${r.record.gitCommit.slice(0, 10)}${r.record.gitDirty ? " (uncommitted changes)" : ""}`
        : "unknown"
    ),
  ).sort();
  items.push([
    "git commit",
    commits.length ? commits.map((c) => `<code>${esc(c)}</code>`).join(", ") : `<span class="muted">—</span>`,
  ]);
  const envs = unique(
    records.map((r) =>
      `deno ${r.record.versions?.deno}, tfjs ${r.record.versions?.tfjs}, backend ${
        r.record.backend?.name ?? "?"
      }`
    ),
  ).sort();
  if (envs.length) items.push(["runtime", envs.map(esc).join("; ")]);
  if (records.length) {
    const first = records[0].record.startedAt;
    const last = records[records.length - 1].record.startedAt;
    items.push(["runs dated", first === last ? esc(first) : `${esc(first)} … ${esc(last)}`]);
    const csvs = unique(records.map((r) => r.csv)).sort();
    const csvLinks = csvs.map((c) =>
      `<a href="${relativeHref(ctx.pageFile, c)}">${esc(c.split("/").pop()!)}</a>`
    );
    const list = records.map((r) =>
      `<li><a href="${relativeHref(ctx.pageFile, r.json)}">${esc(r.record.id)}</a> — ${
        esc(r.record.method)
      }, ` +
      `${esc(r.record.dataset)}, seed ${r.record.seed}, ${formatDuration(r.record.wallTimeSec)}</li>`
    ).join("\n");
    items.push([
      "run records",
      `${records.length} (CSV: ${
        csvLinks.join(", ")
      })<details><summary>list</summary><ul>\n${list}\n</ul></details>`,
    ]);
  } else {
    items.push(["run records", `<span class="muted">none matched this execution</span>`]);
  }
  return `<dl class="meta">\n${items.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("\n")}\n</dl>`;
}

/** Render the body of one notebook's page. */
export function renderNotebookPage(
  nb: ExecutedNotebook,
  records: LocatedRecord[],
  ctx: PageContext,
): RenderedPage {
  const ids = new IdRegistry();
  ids.take("top");
  const headings: Heading[] = [];
  let maths = false;
  const parts: string[] = [];
  nb.cells.forEach((cell, i) => {
    const cellId = ids.take(`cell-${i}`);
    const src = nbText(cell.source);
    if (cell.cell_type === "markdown") {
      const r = renderMarkdown(src, ids);
      headings.push(...r.headings);
      maths ||= r.maths;
      parts.push(
        `<section class="cell markdown" id="${cellId}">\n${relinkNotebooks(r.html, ctx.pages)}</section>`,
      );
      return;
    }
    if (cell.cell_type !== "code") {
      if (src.trim()) parts.push(`<section class="cell raw" id="${cellId}"><pre>${esc(src)}</pre></section>`);
      return;
    }
    let html = "";
    if (ctx.code !== "hidden" && src.trim() !== "") {
      const n = cell.execution_count ?? " ";
      const code = `<pre><code>${esc(src)}</code></pre>`;
      html += ctx.code === "shown"
        ? `<div class="code"><div class="muted">In [${n}]</div>${code}</div>`
        : `<details class="code"><summary>code [${n}]</summary>${code}</details>`;
    }
    (cell.outputs ?? []).forEach((o, k) => {
      const r = renderOutput(o, { assets: ctx.assets, ids, idPrefix: `c${i}o${k}`, root: ctx.root });
      maths ||= r.maths;
      html += r.html;
    });
    if (html) parts.push(`<section class="cell code" id="${cellId}">\n${html}\n</section>`);
  });
  const title = headings.find((h) => h.depth === 1)?.text ?? nb.name;
  const crumbs = `<nav class="crumbs"><a href="${ctx.root}index.html">Report index</a> · ${esc(nb.name)} · ${
    esc(nb.scale)
  } scale</nav>`;
  // The provenance block goes under the title when the notebook opens with one.
  const meta = provenance(nb, records, ctx);
  const firstIsTitle = nb.cells[0]?.cell_type === "markdown" && headings[0]?.depth === 1 &&
    parts[0]?.includes(`id="${headings[0].id}"`);
  const body = firstIsTitle ? [parts[0], meta, ...parts.slice(1)] : [meta, ...parts];
  return {
    title,
    body: `${crumbs}\n${body.join("\n")}`,
    headings,
    maths,
  };
}

/** The anchor on a page for a section whose heading starts with `section` (else `top`). */
export function sectionAnchor(headings: Heading[], section: string): string {
  const norm = (s: string) => s.toLowerCase().replace(/\s+/g, " ").trim();
  const want = norm(section);
  return headings.find((h) => norm(h.text).startsWith(want))?.id ?? "top";
}
