/**
 * Settings tables: every experiment has one, in which `paper` is the base (the methods' reference
 * settings, as the papers ran them) and `laptop` and `smoke` are overrides, each with a note saying
 * what differs and why. The scale is resolved here, once; nothing downstream sees it.
 *
 * @module
 */
import type { Scale } from "../scale.ts";

/** A partial of `T` at every depth (arrays are replaced, not merged). */
export type DeepPartial<T> = T extends readonly unknown[] ? T
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> }
  : T;

/** One experiment's settings: the paper base and two overrides, each with its reason. */
export interface SettingsTable<T> {
  paper: { base: T; note: string };
  laptop: { override: DeepPartial<T>; note: string };
  smoke: { override: DeepPartial<T>; note: string };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** `base` with `over` laid on top: plain objects merge key by key, everything else is replaced. */
export function deepMerge<T>(base: T, over: DeepPartial<T> | undefined): T {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = k in base ? deepMerge((base as Record<string, unknown>)[k], v as never) : v;
  }
  return out as T;
}

/**
 * The settings of `scale`: the paper base, then the scale's override, then `extra` (e.g. a
 * notebook parameter or a command-line flag). A key in an override that the base lacks is an error
 * (a typo would otherwise be silently ignored).
 */
export function resolveSettings<T>(table: SettingsTable<T>, scale: Scale, extra?: DeepPartial<T>): T {
  const scaleOver = scale === "paper" ? undefined : table[scale].override;
  for (const [name, over] of [[scale, scaleOver], ["override", extra]] as const) {
    const bad = unknownKeys(table.paper.base, over);
    if (bad.length > 0) {
      throw new RangeError(
        `settings ${name}: unknown key(s) ${bad.join(", ")}; known: ${
          Object.keys(table.paper.base as object).join(", ")
        }`,
      );
    }
  }
  return deepMerge(deepMerge(table.paper.base, scaleOver), extra);
}

/** The note explaining the settings of `scale`. */
export function settingsNote<T>(table: SettingsTable<T>, scale: Scale): string {
  return table[scale].note;
}

function unknownKeys(base: unknown, over: unknown, prefix = ""): string[] {
  if (!isPlainObject(base) || !isPlainObject(over)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(over)) {
    if (!(k in base)) out.push(prefix + k);
    else out.push(...unknownKeys(base[k], v, `${prefix}${k}.`));
  }
  return out;
}
