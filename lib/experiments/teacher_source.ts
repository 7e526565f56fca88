/**
 * Where an experiment's teacher comes from, as plain data: a kit recipe, a TF.js model folder, or an
 * HTTP label endpoint. Notebooks take it as one parameter (`teacher`), as a string or as JSON:
 *
 * - `"recipe"` or empty: the kit's cached teacher for the notebook's dataset, scale and seed;
 * - `"mnist:db3-lenet5:laptop[:seed]"`: a named kit recipe (model may be empty for the default);
 * - `"http://host:port/v2/models/NAME"` (KServe v2) or `".../v1/models/NAME"` (TF Serving), optionally
 *   followed by `/versions/V`: a label-only endpoint;
 * - anything else: a model folder — a kit checkpoint (`spec.json`) or a TF.js LayersModel/GraphModel
 *   (`model.json`);
 * - a JSON object of type {@link TeacherSource} for what a string cannot say (input adapter, token).
 *
 * What each source can answer ({@link sourceAccess}): recipes and folders hold the model, so every
 * access level (`label`, `probs`, `logits+grad`); an endpoint answers labels only, so KD (probs) and
 * CAKE (logits+grad) refuse it with a {@link TeacherAccessError} before any work starts.
 *
 * @module
 */
import type { DatasetName } from "../data/mod.ts";
import type { ModelName } from "../models/registry.ts";
import type { Protocol } from "../remote/protocols.ts";
import { parseScale, type Scale } from "../scale.ts";
import type { InputAdapterOptions } from "../teachers/adapters.ts";
import { InputError } from "../util/checks.ts";

/** A kit teacher trained by recipe (`getTeacher`, cached under `data/teachers/`). */
export interface RecipeTeacherSource {
  kind: "recipe";
  dataset: DatasetName;
  /** Default: the dataset's DB3 teacher (db3-lenet5, or db3-alexnet for CIFAR-10). */
  model?: ModelName;
  /** Default: the experiment's scale. */
  scale?: Scale;
  /** Default: the experiment's seed. */
  seed?: number;
}

/** A model folder: a kit checkpoint (`spec.json`) or a TF.js model (`model.json`) with its input adapter. */
export interface FolderTeacherSource {
  kind: "folder";
  path: string;
  /** How a TF.js model expects its input (layout, range, mean/std); default the kit's NHWC [0,1]. */
  adapter?: InputAdapterOptions;
}

/** A label-only HTTP endpoint (KServe v2 or TF Serving). */
export interface HttpTeacherSource {
  kind: "http";
  /** Base URL, e.g. `http://127.0.0.1:8500`. */
  url: string;
  protocol: Protocol;
  /** Model name in the endpoint's path. */
  model: string;
  version?: string;
  /** Bearer token (sent as `Authorization: Bearer …`; never recorded). */
  token?: string;
  /** How the remote model expects its input (applied client-side); default the kit's NHWC [0,1]. */
  adapter?: InputAdapterOptions;
}

/** Where an experiment's teacher comes from (see the module doc). */
export type TeacherSource = RecipeTeacherSource | FolderTeacherSource | HttpTeacherSource;

/**
 * Environment variable holding an HTTP teacher's bearer token for the units (a spec is written to the
 * run store, so it never holds the token).
 */
export const TEACHER_TOKEN_ENV = "BKD_TEACHER_TOKEN";

/** `s` for a run spec (saved in the run store): an endpoint holding a token is refused, naming `family`. */
export function tokenlessSource<T extends TeacherSource | undefined>(s: T, family: string): T {
  if (s?.kind === "http" && s.token !== undefined) {
    throw new RangeError(
      `${family}: the spec is saved in the run store, so it never holds a token; ` +
        `set ${TEACHER_TOKEN_ENV} for the units instead`,
    );
  }
  return s;
}

/** What a method asks a teacher for. */
export type TeacherAccess = "label" | "probs" | "logits+grad";

/** A method needs more access than the teacher source gives. */
export class TeacherAccessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TeacherAccessError";
  }
}

/** The access levels a source can serve. */
export function sourceAccess(s: TeacherSource): readonly TeacherAccess[] {
  return s.kind === "http" ? ["label"] : ["label", "probs", "logits+grad"];
}

/** A one-line description for tables and run records (never the token). */
export function describeTeacherSource(s: TeacherSource): string {
  switch (s.kind) {
    case "recipe":
      return `kit recipe ${s.dataset}:${s.model ?? "(default)"}:${s.scale ?? "(scale)"}:s${
        s.seed ?? "(seed)"
      }`;
    case "folder":
      return `model folder ${s.path}${s.adapter ? ` (adapter ${JSON.stringify(s.adapter)})` : ""}`;
    case "http":
      return `${s.protocol} endpoint ${s.url.replace(/\/+$/, "")} model ${s.model}` +
        `${s.version ? ` version ${s.version}` : ""} (labels only)`;
  }
}

/** The source as plain JSON for run records: the token is replaced by a marker. */
export function recordableSource(s: TeacherSource): Record<string, unknown> {
  return s.kind === "http" && s.token !== undefined ? { ...s, token: "(set, not recorded)" } : { ...s };
}

/**
 * Refuse a source that cannot serve `need` for `method`, with what to pass instead. Called before the
 * first query.
 */
export function requireAccess(s: TeacherSource, need: TeacherAccess, method: string): void {
  if (sourceAccess(s).includes(need)) return;
  throw new TeacherAccessError(
    `${method} needs "${need}" access to the teacher, but ${describeTeacherSource(s)} answers labels only. ` +
      `Pass a teacher folder ({kind: "folder", path}) or a kit recipe ({kind: "recipe", dataset}) for ${method}, ` +
      `or run only the label-only methods on this endpoint.`,
  );
}

/** Defaults a recipe source takes from the experiment. */
export interface SourceDefaults {
  dataset: DatasetName;
  scale: Scale;
  seed: number;
}

const ENDPOINT = /^(https?:\/\/[^/]+(?:\/.*?)?)\/(v2|v1)\/models\/([^/:]+)(?:\/versions\/([^/:]+))?\/?$/;
const RECIPE = /^([a-z0-9]+):([a-z0-9-]*):([a-z]+)(?::(\d+))?$/;

/**
 * A teacher source from a notebook parameter or option: a {@link TeacherSource}, a string in one of
 * the forms of the module doc, or `undefined` (the kit recipe). Recipe fields left out take the
 * experiment's dataset, scale and seed.
 */
export function parseTeacherSource(
  arg: TeacherSource | string | undefined,
  d: SourceDefaults,
): TeacherSource {
  const withDefaults = (s: TeacherSource): TeacherSource =>
    s.kind === "recipe" ? { ...s, scale: s.scale ?? d.scale, seed: s.seed ?? d.seed } : s;
  if (arg === undefined || arg === "" || arg === "recipe") {
    return withDefaults({ kind: "recipe", dataset: d.dataset });
  }
  if (typeof arg !== "string") {
    const kinds = ["recipe", "folder", "http"];
    if (!arg || typeof arg !== "object" || !kinds.includes((arg as TeacherSource).kind)) {
      throw new InputError(
        `teacher ${
          JSON.stringify(arg)
        } is not a teacher source: give {kind: "recipe" | "folder" | "http", …}, ` +
          `a folder path, an endpoint URL or dataset:model:scale[:seed]`,
      );
    }
    if (arg.kind === "http" && !["kserve-v2", "tf-serving"].includes(arg.protocol)) {
      throw new InputError(`teacher endpoint protocol "${arg.protocol}": use "kserve-v2" or "tf-serving"`);
    }
    return withDefaults(arg);
  }
  const text = arg.trim();
  if (/^https?:\/\//.test(text)) {
    const m = text.match(ENDPOINT);
    if (!m) {
      throw new InputError(
        `teacher "${text}" is a URL but not a model endpoint: write http://host:port/v2/models/NAME (KServe v2) ` +
          `or http://host:port/v1/models/NAME (TF Serving), optionally ending in /versions/V`,
      );
    }
    return {
      kind: "http",
      url: m[1],
      protocol: m[2] === "v2" ? "kserve-v2" : "tf-serving",
      model: decodeURIComponent(m[3]),
      ...(m[4] ? { version: decodeURIComponent(m[4]) } : {}),
    };
  }
  const r = text.match(RECIPE);
  if (r) {
    return {
      kind: "recipe",
      dataset: r[1] as DatasetName,
      ...(r[2] ? { model: r[2] as ModelName } : {}),
      scale: parseScale(r[3]),
      seed: r[4] !== undefined ? Number(r[4]) : d.seed,
    };
  }
  return { kind: "folder", path: text.replace(/\/+$/, "") };
}
