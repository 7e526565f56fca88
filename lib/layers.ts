/**
 * The layer order of `lib/`, as data, and the checks that keep imports pointing down it.
 *
 * Data flows dataset → teacher → oracle → method → transfer set → student trainer → run record →
 * notebook. A module may import its own folder, its own layer, or any layer below; never one above,
 * and folders never import each other in a cycle. `tests/layering_test.ts` parses every `lib/**.ts`
 * and applies {@link importViolations} and {@link folderCycles}.
 *
 * Two placements need a word:
 * - `train` (the one trainer) sits *below* `teachers`: a kit recipe teacher is trained by it. The
 *   drivers that train students on a transfer set live in `experiments`/`runner`.
 * - `learn` (losses, optimizers, prediction) sits below both `parallel` and `train`: the trainer uses
 *   the worker pool and the pool's workers compute the losses, so the shared math lives under both.
 *
 * @module
 */

/** Layers from the bottom up; each entry lists the `lib/` folders (or top-level files) in it. */
export const LAYERS: readonly (readonly string[])[] = [
  ["util", "scale.ts", "layers.ts"], // plain helpers, no tfjs state
  ["kernels"], // wasm training kernels
  ["backend.ts"], // backend selection (registers the kernels)
  ["data", "models", "show", "learn"], // datasets, networks, display, learning math
  ["parallel", "native"], // engines: worker replicas, native inference
  ["train"], // the trainer (teachers and students)
  ["teachers"], // teacher folders, adapters, recipe resolution
  ["oracle"], // access levels + ledger
  ["remote"], // HTTP transport for label-only teachers
  ["db3", "zeroshot", "cake"], // the methods (labelers, generators, synthesisers)
  ["results"], // run records, tables
  ["runner"], // the runner: run stores, plans, units, executors (knows no experiment)
  ["experiments"], // experiment specs (settings tables), their units, running them
  ["views", "report"], // tables, claims and figures built from results; the static report
  ["mod.ts"], // the public barrel
];

/** The unit a `lib/`-relative path belongs to: its top folder, or the file itself at the top. */
export function unitOf(libPath: string): string {
  const i = libPath.indexOf("/");
  return i < 0 ? libPath : libPath.slice(0, i);
}

/** The layer index of a `lib/`-relative path, or `undefined` when its unit is not listed. */
export function layerOf(
  libPath: string,
  layers: readonly (readonly string[])[] = LAYERS,
): number | undefined {
  const unit = unitOf(libPath);
  const i = layers.findIndex((l) => l.includes(unit));
  return i < 0 ? undefined : i;
}

/** One import between two `lib/`-relative paths. */
export interface ImportEdge {
  from: string;
  to: string;
}

/** What is wrong with one import. */
export interface ImportViolation extends ImportEdge {
  reason: string;
}

/**
 * Imports that go up the layer order, or touch a unit the order does not list (a new folder must be
 * placed in {@link LAYERS} before it is used).
 */
export function importViolations(
  edges: readonly ImportEdge[],
  layers: readonly (readonly string[])[] = LAYERS,
): ImportViolation[] {
  const out: ImportViolation[] = [];
  for (const e of edges) {
    const a = layerOf(e.from, layers), b = layerOf(e.to, layers);
    if (a === undefined || b === undefined) {
      const unit = unitOf(a === undefined ? e.from : e.to);
      out.push({
        ...e,
        reason: `"${unit}" is not in LAYERS (lib/layers.ts): add it to the layer it belongs to`,
      });
    } else if (b > a) {
      out.push({
        ...e,
        reason: `${unitOf(e.from)} (layer ${a}) imports ${unitOf(e.to)} (layer ${b}), which sits above it: ` +
          `move the shared piece down or pass it in from above`,
      });
    }
  }
  return out;
}

/** Folder-level import cycles (strongly connected groups of more than one unit), each sorted. */
export function folderCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = unitOf(e.from), b = unitOf(e.to);
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Set());
    if (!next.has(b)) next.set(b, new Set());
    next.get(a)!.add(b);
  }
  // Tarjan's strongly connected components.
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), groups: string[][] = [];
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) groups.push(group.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return groups;
}

/** Relative module specifiers of a TypeScript source: static imports/re-exports, `import()`, worker URLs. */
export function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm, // import … from "x", export … from "x"
    /^\s*import\s*["']([^"']+)["']/gm, // import "x"
    /\bimport\(\s*["']([^"']+)["']\s*\)/g, // import("x")
    /new URL\(\s*["']([^"']+\.ts)["']\s*,\s*import\.meta\.url\s*\)/g, // worker entry points
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) if (m[1].startsWith(".")) out.push(m[1]);
  return out;
}
