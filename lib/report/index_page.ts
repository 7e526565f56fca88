/**
 * The report's index page: the summary table (every paper row and ablation the notebooks cover,
 * each linking to its notebook section and its run records), the verdict rule, and the list of
 * notebook pages.
 *
 * @module
 */
import { formatPaperValue } from "../results/paper.ts";
import { esc, relativeHref } from "./html.ts";
import type { ExecutedNotebook } from "./notebook.ts";
import { formatCount, formatDuration, formatMeasured, type SummaryRow } from "./summary.ts";

/** A notebook's entry on the index. */
export interface IndexEntry {
  /** The notebook. */
  notebook: ExecutedNotebook;
  /** Its page file name (relative to the site root). */
  page: string;
  /** Its page title. */
  title: string;
  /** Its summary rows, each with the anchor of its section on the page. */
  rows: { row: SummaryRow; anchor: string }[];
  /** Number of run records matched. */
  records: number;
}

/** What the index needs. */
export interface IndexOptions {
  /** Scale of the report. */
  scale: string;
  /** Absolute path of the index file (for relative links to run records). */
  indexFile: string;
  /** The command that rebuilds this report, shown on the page. */
  command: string;
  /** Catalogued notebooks with no executed copy at this scale (listed so a missing row is not a silent gap). */
  notExecuted?: string[];
}

function recordLinks(row: SummaryRow, indexFile: string): string {
  const json = row.records.map((r, i) => {
    const seed = row.records.filter((x) => x.record.seed === r.record.seed).length > 1
      ? `#${i + 1}`
      : `s${r.record.seed}`;
    return `<a href="${relativeHref(indexFile, r.json)}" title="${esc(r.record.id)}">${esc(seed)}</a>`;
  });
  const csvs = [...new Set(row.records.map((r) => r.csv))].sort()
    .map((c) => `<a href="${relativeHref(indexFile, c)}">CSV</a>`);
  return `JSON ${json.join(" ")} · ${csvs.join(" ")}`;
}

/** Body of the index page. */
export function renderIndex(entries: IndexEntry[], opts: IndexOptions): string {
  const rows: string[] = [];
  let k = 0;
  for (const e of entries) {
    if (e.rows.length) {
      const ex = e.notebook.execution;
      rows.push(
        `<tr class="group"><th colspan="10"><a href="${esc(e.page)}">${esc(e.notebook.name)}</a> — ${
          esc(e.title)
        }` +
          `${ex.started ? ` <span class="muted">· executed ${esc(ex.started)}</span>` : ""}</th></tr>`,
      );
    }
    for (const { row, anchor } of e.rows) {
      k++;
      const paper = row.paper
        ? `${esc(formatPaperValue(row.paper.value))}${
          row.paper.unverified ? ' <span class="muted">(unverified)</span>' : ""
        }`
        : `<span class="muted">—</span>`;
      rows.push(
        `<tr id="row-${k}">` +
          `<td><a href="${esc(e.page)}#${esc(anchor)}">${esc(row.label)}</a></td>` +
          `<td>${esc(row.dataset)}</td>` +
          `<td class="num" title="${row.paper ? esc(row.paper.source) : ""}">${paper}</td>` +
          `<td class="num">${esc(formatMeasured(row.measured))}</td>` +
          `<td class="num">${esc(row.seeds.join(", "))}</td>` +
          `<td>${esc(row.scale)}</td>` +
          `<td class="num">${esc(formatDuration(row.wallTimeSec))}</td>` +
          `<td class="num">${
            row.queries === undefined ? `<span class="muted">—</span>` : esc(formatCount(row.queries))
          }</td>` +
          `<td class="verdict v-${row.verdict.kind}">${esc(row.verdict.text)}</td>` +
          `<td>${recordLinks(row, opts.indexFile)}</td>` +
          `</tr>`,
      );
    }
  }
  const table = rows.length
    ? `<table class="summary">
<thead><tr><th>what (links to the notebook section)</th><th>dataset</th><th>paper (%)</th><th>measured (%)</th><th>seeds</th>` +
      `<th>scale</th><th>wall time</th><th>teacher queries</th><th>verdict</th><th>run records</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>`
    : `<p class="muted">No summary rows: no run records matched the executed notebooks.</p>`;
  const list = entries.map((e) => {
    const ex = e.notebook.execution;
    const when = ex.started ? esc(ex.started) : `<span class="muted">not recorded</span>`;
    const wall = typeof ex.wall_seconds === "number" ? esc(formatDuration(ex.wall_seconds)) : "";
    return `<tr><td><a href="${esc(e.page)}">${esc(e.notebook.name)}</a></td><td>${esc(e.title)}</td>` +
      `<td>${when}</td><td class="num">${wall}</td><td>${esc(ex.status ?? "—")}</td>` +
      `<td class="num">${e.records}</td><td class="num">${e.rows.length}</td></tr>`;
  }).join("\n");
  return `<h1>boundary-kd results — ${esc(opts.scale)} scale</h1>
<p>${entries.length} executed notebooks, ${k} measured rows. Every number below comes from the run records the
notebooks wrote (linked in the last column); paper numbers come from <code>lib/results/paper.ts</code>.
Accuracies are final-epoch test accuracies in percent; "measured" is the mean over the row's runs ± the sample
standard deviation over seeds (no ± for a single run). Wall time and teacher queries (what the row's own method
paid: label queries, probability queries for KD, forward + backward passes for CAKE) are summed over its runs.
Rebuild with <code>${esc(opts.command)}</code>.</p>
<p class="rule"><b>Verdict rule.</b> Tolerance = max(2 × measured spread, the paper's ± spread, 1 point).
|measured − paper| within the tolerance: <span class="v-match">matches</span>; otherwise
<span class="v-below">below</span> or <span class="v-above">above</span> the paper. At smoke and laptop scale the
settings (samples, queries, epochs) are reduced on purpose, so a gap there is expected and says so; only a
paper-scale run can fail to reproduce a paper number. Rows without a paper number (ablations, baselines) get no
verdict.</p>
<h2 id="summary">Paper vs measured</h2>
${table}
${
    opts.notExecuted?.length
      ? `<p class="muted">Not executed at ${esc(opts.scale)} scale, so not in this report: ${
        opts.notExecuted.map(esc).join(", ")
      }.</p>\n`
      : ""
  }<h2 id="notebooks">Notebooks</h2>
<table class="notebooks">
<thead><tr><th>notebook</th><th>title</th><th>executed</th><th>wall time</th><th>status</th><th>run records</th><th>rows</th></tr></thead>
<tbody>
${list}
</tbody>
</table>`;
}
