/**
 * Author Jupyter notebooks from TypeScript.
 *
 * Notebooks are generated rather than hand-edited so that their JSON stays canonical (stable cell
 * ids, empty outputs, the repo's kernelspec) and diffs stay readable. The kernelspec name is
 * `deno-bkd`, the spec kept in `tools/jupyter/kernels/deno-bkd/` and found through `JUPYTER_PATH`.
 */

/** A markdown cell. */
export interface MdCell {
  md: string;
}

/** A code cell; `tags` end up in `metadata.tags` (e.g. `["parameters"]`). */
export interface CodeCell {
  code: string;
  tags?: string[];
}

export type CellInput = MdCell | CodeCell;

/** The kernelspec every kit notebook carries. */
export const KERNELSPEC = {
  name: "deno-bkd",
  display_name: "Deno (boundary-kd)",
  language: "typescript",
} as const;

/** What the Deno kernel itself reports, so tools that never start a kernel still see TypeScript. */
export const LANGUAGE_INFO = {
  name: "typescript",
  file_extension: ".ts",
  mimetype: "text/x.typescript",
  codemirror_mode: "typescript",
  nbconvert_exporter: "script",
  pygments_lexer: "typescript",
} as const;

/** nbformat stores source as a list of lines, each keeping its trailing newline except the last. */
function sourceLines(text: string): string[] {
  const lines = text.split("\n");
  return lines.map((line, i) => (i < lines.length - 1 ? line + "\n" : line)).filter((l) => l !== "");
}

/**
 * Build the notebook JSON (nbformat 4.5). Cell ids are derived from the position, which keeps them
 * unique and stable across re-generation (random ids would make every regeneration a diff).
 */
export function buildNotebook(cells: CellInput[]): Record<string, unknown> {
  return {
    cells: cells.map((cell, i) => {
      const id = `cell-${String(i).padStart(3, "0")}`;
      if ("md" in cell) {
        return { cell_type: "markdown", id, metadata: {}, source: sourceLines(cell.md) };
      }
      const metadata = cell.tags?.length ? { tags: [...cell.tags] } : {};
      return {
        cell_type: "code",
        execution_count: null,
        id,
        metadata,
        outputs: [],
        source: sourceLines(cell.code),
      };
    }),
    metadata: { kernelspec: { ...KERNELSPEC }, language_info: { ...LANGUAGE_INFO } },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

/** Write a notebook to `path` (parent directory must exist), one-space indent like Jupyter. */
export async function writeNotebook(path: string, cells: CellInput[]): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(buildNotebook(cells), null, 1) + "\n");
}
