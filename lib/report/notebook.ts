/**
 * Reading executed notebooks (`.ipynb`, nbformat 4) for the report: cells in order, their outputs,
 * the runner's execution metadata (`metadata.bkd_execution`) and the report switch
 * (`metadata.boundary_kd.report`).
 *
 * @module
 */
import { basename, join } from "node:path";
import { type Scale, SCALES } from "../scale.ts";

/** One output of a code cell, as stored in the notebook. */
export interface NbOutput {
  /** `display_data`, `execute_result`, `stream` or `error`. */
  output_type: string;
  /** MIME bundle of `display_data` / `execute_result`. */
  data?: Record<string, string | string[] | object>;
  /** Stream name (`stdout`, `stderr`) of a `stream` output. */
  name?: string;
  /** Text of a `stream` output. */
  text?: string | string[];
  /** Error name, value and traceback of an `error` output. */
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** One cell. */
export interface NbCell {
  /** `markdown`, `code` or `raw`. */
  cell_type: string;
  /** Source text (a string or a list of lines). */
  source: string | string[];
  /** Cell metadata (tags live in `tags`). */
  metadata?: { tags?: string[]; [k: string]: unknown };
  /** Outputs of a code cell. */
  outputs?: NbOutput[];
  /** Execution counter of a code cell. */
  execution_count?: number | null;
}

/** What `tools/run_notebook.py` records about an execution (every field optional: older copies). */
export interface ExecutionInfo {
  /** Source notebook, repository-relative. */
  source?: string;
  /** ISO time the execution started. */
  started?: string;
  /** Seconds the execution took. */
  wall_seconds?: number;
  /** `ok` or `failed`. */
  status?: string;
  /** Index of the failing cell, or null. */
  failed_cell?: number | null;
  /** Injected parameters (always includes `scale`). */
  parameters?: Record<string, unknown>;
}

/** An executed notebook, read from disk. */
export interface ExecutedNotebook {
  /** File path it was read from. */
  path: string;
  /** File name without `.<scale>.ipynb`, e.g. `10_db3_mnist`. */
  name: string;
  /** Scale from the file name (`<name>.<scale>.ipynb`), else from the injected parameters. */
  scale: Scale | string;
  /** Cells in the order the author wrote them. */
  cells: NbCell[];
  /** The runner's execution record (empty when the notebook was not run by `tools/notebooks.ts`). */
  execution: ExecutionInfo;
  /** False when the notebook asks to stay out of the report (`metadata.boundary_kd.report === false`). */
  inReport: boolean;
  /** The whole notebook metadata, for anything else a page wants to show. */
  metadata: Record<string, unknown>;
}

/** Join a notebook text field (string or list of lines). */
export function nbText(s: string | string[] | undefined): string {
  if (s === undefined) return "";
  return Array.isArray(s) ? s.join("") : s;
}

/** Split `10_db3_mnist.laptop.ipynb` into name and scale (scale `undefined` if the file has none). */
export function parseNotebookFileName(file: string): { name: string; scale?: string } {
  const base = basename(file).replace(/\.ipynb$/, "");
  const m = base.match(/^(.*)\.([a-z]+)$/);
  if (m && (SCALES as readonly string[]).includes(m[2])) return { name: m[1], scale: m[2] };
  return { name: base };
}

/** Parse notebook JSON text; errors name the file and say what to do. */
export function parseNotebook(path: string, text: string): ExecutedNotebook {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `${path} is not valid notebook JSON (${(e as Error).message}); re-execute it with ` +
        "`deno run -A tools/notebooks.ts run <notebook> --scale <scale>` or remove it from the folder",
    );
  }
  if (!Array.isArray(json.cells)) {
    throw new Error(
      `${path} has no "cells" list, so it is not an nbformat-4 notebook; re-execute or remove it`,
    );
  }
  const metadata = (json.metadata ?? {}) as Record<string, unknown>;
  const execution = (metadata.bkd_execution ?? {}) as ExecutionInfo;
  const kit = (metadata.boundary_kd ?? {}) as { report?: unknown };
  const parsed = parseNotebookFileName(path);
  const scale = parsed.scale ?? String(execution.parameters?.scale ?? "unknown");
  return {
    path,
    name: parsed.name,
    scale,
    cells: json.cells as NbCell[],
    execution,
    inReport: kit.report !== false,
    metadata,
  };
}

/** Read one executed notebook. */
export async function readNotebook(path: string): Promise<ExecutedNotebook> {
  return parseNotebook(path, await Deno.readTextFile(path));
}

/** Which executed notebooks to take from a folder. */
export interface NotebookSelection {
  /** Only files `<name>.<scale>.ipynb` of this scale. */
  scale: Scale;
  /** Only these notebooks (names like `10_db3_mnist`, with or without `.ipynb` / scale suffix). */
  names?: string[];
}

/**
 * The executed notebooks of one scale in `dir`, sorted by file name, including those marked to
 * leave the report (callers filter on {@link ExecutedNotebook.inReport}). A requested name that
 * has no executed copy is an error naming the command that makes one.
 */
export async function listExecutedNotebooks(
  dir: string,
  sel: NotebookSelection,
): Promise<ExecutedNotebook[]> {
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(`.${sel.scale}.ipynb`)) files.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(
      `no folder ${dir} with executed notebooks; run \`deno task notebooks --scale ${sel.scale}\` first ` +
        "or pass --notebooks <folder>",
    );
  }
  files.sort();
  let chosen = files;
  if (sel.names?.length) {
    const want = sel.names.map((n) => parseNotebookFileName(basename(n)).name);
    chosen = files.filter((f) => want.includes(parseNotebookFileName(f).name));
    const missing = want.filter((w) => !chosen.some((f) => parseNotebookFileName(f).name === w));
    if (missing.length) {
      throw new Error(
        `no executed ${sel.scale} copy of ${missing.join(", ")} in ${dir}; run ` +
          `\`deno run -A tools/notebooks.ts run ${
            missing.map((m) => `notebooks/${m}.ipynb`).join(" ")
          } --scale ${sel.scale}\` first`,
      );
    }
  }
  const out: ExecutedNotebook[] = [];
  for (const f of chosen) out.push(await readNotebook(join(dir, f)));
  return out;
}
