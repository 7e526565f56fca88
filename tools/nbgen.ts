/**
 * Generate the per-dataset notebooks of a family from one template: DB3 (10/11/12) and ZSDB3KD
 * (30/31/32). The dataset is the parameter; dataset-specific words come from the kit — model names
 * from the recipes and settings, the scale notes from `db3Settings` / `zsSettingsNote`, paper numbers
 * from `lib/results/paper.ts` — so a changed setting or paper number changes the prose with it.
 *
 *   deno task nbgen            write notebooks/1X_db3_*.ipynb and 3X_zsdb3kd_*.ipynb
 *   deno task nbgen --check    exit 1 if a committed notebook differs from its generated text
 *
 * Templates: `tools/nbgen/<family>.template.ipynb`, notebooks with `{{name}}` placeholders. Edit the
 * template (or the settings), never a generated notebook: `tests/nbgen_test.ts` fails on hand edits.
 *
 * @module
 */
import type { DatasetName } from "../lib/data/types.ts";
import { missingFix } from "../lib/data/dataset_dirs.ts";
import { BD_DEFAULTS } from "../lib/db3/bd.ts";
import { db3Settings } from "../lib/experiments/db3.ts";
import { modelTitle } from "../lib/views/db3_table.ts";
import { zsSettings, zsSettingsNote } from "../lib/experiments/zs_settings.ts";
import { zsNotebookSeeds } from "../lib/experiments/zs_spec.ts";
import { tableARow, tableBRows } from "../lib/results/paper.ts";
import { defaultTeacherModel } from "../lib/train/teachers.ts";
import { repoRoot } from "../lib/util/paths.ts";

/** The notebook families and the datasets they cover, in notebook-number order. */
export const NB_FAMILIES = {
  db3: { first: 10, slug: "db3" },
  zsdb3kd: { first: 30, slug: "zsdb3kd" },
} as const;
export type NbFamily = keyof typeof NB_FAMILIES;
export const NB_DATASETS: readonly DatasetName[] = ["mnist", "fmnist", "cifar10"];

const TITLES: Record<DatasetName, string> = { mnist: "MNIST", fmnist: "Fashion-MNIST", cifar10: "CIFAR-10" };

/** The notebook file name of a family and dataset, e.g. `11_db3_fmnist.ipynb`. */
export function notebookFile(family: NbFamily, dataset: DatasetName): string {
  const f = NB_FAMILIES[family];
  return `${f.first + NB_DATASETS.indexOf(dataset)}_${f.slug}_${dataset}.ipynb`;
}

/** Where the dataset comes from, as the loader's own fix text says. */
function dataLine(dataset: DatasetName): string {
  return wrap(`Data: ${TITLES[dataset]} is read offline; if it is missing, ${missingFix(dataset)}.`);
}

/** Greedy word wrap at `width` columns (markdown source lines, as the hand-written notebooks had). */
function wrap(text: string, width = 115): string {
  const out: string[] = [];
  let line = "";
  for (const w of text.split(/\s+/).filter((x) => x !== "")) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out.join("\n");
}

function db3Values(dataset: DatasetName): Record<string, string> {
  const student = db3Settings("paper", dataset).student.model;
  const note = (s: "smoke" | "laptop" | "paper") => db3Settings(s, dataset).note;
  const teacherPaper = tableARow("zsdb3kd", dataset)?.teacherAcc[0]?.mean;
  const noTableB = tableBRows(dataset).length === 0
    ? ` Table B has no ${TITLES[dataset]} numbers, so only the teacher row has a paper number` +
      (teacherPaper !== undefined ? ` (${teacherPaper}%, the ZSDB3KD paper's table A).` : ".")
    : "";
  return {
    title: TITLES[dataset],
    pair: `${modelTitle(defaultTeacherModel(dataset))} → ${modelTitle(student)}`,
    bdCandidates: String(BD_DEFAULTS.candidates),
    scales: wrap(
      `Scales: \`smoke\` (${note("smoke")}; accuracies meaningless), \`laptop\` (${note("laptop")}), ` +
        `\`paper\` (every training image, ${note("paper")}).${noTableB}`,
    ) + `\n\n${dataLine(dataset)}`,
  };
}

function zsValues(dataset: DatasetName): Record<string, string> {
  const note = (s: "smoke" | "laptop") => zsSettingsNote(s, dataset);
  const paper = tableARow("zsdb3kd", dataset);
  const nb = String(NB_FAMILIES.zsdb3kd.first + NB_DATASETS.indexOf(dataset)) as "30" | "31" | "32";
  const seeds = zsNotebookSeeds(nb).length === 1 ? "one seed" : "three seeds measure the spread";
  return {
    title: TITLES[dataset],
    teacher: modelTitle(defaultTeacherModel(dataset)),
    student: modelTitle(zsSettings("paper", dataset).student.model),
    scales: wrap(
      `At \`laptop\` scale: ${note("laptop")}; ${seeds}. The paper's student reaches ` +
        `${paper?.studentAcc[0]?.mean ?? "?"}% from a ${
          paper?.teacherAcc[0]?.mean ?? "?"
        }% teacher (table A), ` +
        `so the measured accuracy at this scale is far below it. \`smoke\`: ${note("smoke")}.`,
    ) + `\n\n${dataLine(dataset)}`,
  };
}

interface Notebook {
  cells: { source: string[] | string }[];
}

/** The generated text of one notebook (the template with its placeholders filled). */
export async function generateNotebook(family: NbFamily, dataset: DatasetName): Promise<string> {
  const template = await Deno.readTextFile(`${repoRoot()}/tools/nbgen/${family}.template.ipynb`);
  const values: Record<string, string> = {
    ...(family === "db3" ? db3Values(dataset) : zsValues(dataset)),
    number: String(NB_FAMILIES[family].first + NB_DATASETS.indexOf(dataset)),
    dataset,
    file: notebookFile(family, dataset),
  };
  const nb = JSON.parse(template) as Notebook;
  for (const cell of nb.cells) {
    const src = (Array.isArray(cell.source) ? cell.source.join("") : cell.source).replace(
      /\{\{(\w+)\}\}/g,
      (_, name: string) => {
        if (!(name in values)) throw new Error(`template ${family}: unknown placeholder {{${name}}}`);
        return values[name];
      },
    );
    const lines = src.split("\n");
    cell.source = [...lines.slice(0, -1).map((l) => `${l}\n`), ...(lines.at(-1) ? [lines.at(-1)!] : [])];
  }
  return JSON.stringify(nb, null, 1) + "\n";
}

/** Every generated notebook: path (repo-relative) → text. */
export async function generateAll(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const family of Object.keys(NB_FAMILIES) as NbFamily[]) {
    for (const d of NB_DATASETS) {
      out.set(`notebooks/${notebookFile(family, d)}`, await generateNotebook(family, d));
    }
  }
  return out;
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  let stale = 0;
  for (const [path, text] of await generateAll()) {
    const full = `${repoRoot()}/${path}`;
    const now = await Deno.readTextFile(full).catch(() => "");
    if (now === text) continue;
    if (check) {
      stale++;
      console.error(
        `${path} differs from its template: edit tools/nbgen/*.template.ipynb, then run deno task nbgen`,
      );
    } else {
      await Deno.writeTextFile(full, text);
      console.log(`wrote ${path}`);
    }
  }
  if (stale > 0) Deno.exit(1);
}
