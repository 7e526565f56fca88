/**
 * Up-front checks of user input (options, seeds, enumerated names). A value out of range is an
 * {@link InputError} that names the option, the value given, the range allowed and what to do,
 * raised before any work starts, so a bad option never hangs a search or turns into a wrong number.
 *
 * @module
 */

/** A user-supplied value (option, seed, name, sample) that cannot be used. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/** Allowed range of one numeric option. */
export interface NumberRule {
  /** Must be an integer (a safe one). */
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** Must be strictly greater than this. */
  above?: number;
  /** Must be strictly less than this. */
  below?: number;
  /** Infinity allowed (e.g. "no limit"); NaN never is. */
  infinite?: boolean;
}

/** Text of a rule, e.g. "an integer ≥ 1" or "a finite number > 0". */
export function describeRule(r: NumberRule): string {
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`≥ ${r.min}`);
  if (r.above !== undefined) parts.push(`> ${r.above}`);
  if (r.max !== undefined) parts.push(`≤ ${r.max}`);
  if (r.below !== undefined) parts.push(`< ${r.below}`);
  const kind = r.integer ? "an integer" : r.infinite ? "a number (Infinity allowed)" : "a finite number";
  return parts.length ? `${kind} ${parts.join(" and ")}` : kind;
}

/** Whether `v` satisfies `r`. */
export function fitsRule(v: unknown, r: NumberRule): boolean {
  if (typeof v !== "number" || Number.isNaN(v)) return false;
  if (!Number.isFinite(v) && !r.infinite) return false;
  if (r.integer && Number.isFinite(v) && !Number.isSafeInteger(v)) return false;
  if (r.min !== undefined && !(v >= r.min)) return false;
  if (r.max !== undefined && !(v <= r.max)) return false;
  if (r.above !== undefined && !(v > r.above)) return false;
  if (r.below !== undefined && !(v < r.below)) return false;
  return true;
}

function show(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Check the numeric options of `o` against `rules` (options absent from `o` or `undefined` are
 * skipped: defaults are trusted). `where` names the function, e.g. "boundaryDistances".
 */
export function checkNumbers(where: string, o: object, rules: Record<string, NumberRule>): void {
  const rec = o as Record<string, unknown>;
  for (const [key, rule] of Object.entries(rules)) {
    const v = rec[key];
    if (v === undefined) continue;
    if (!fitsRule(v, rule)) {
      throw new InputError(
        `${where}: option ${key} = ${show(v)} is out of range; it must be ${describeRule(rule)}. ` +
          `Pass a value in that range, or leave ${key} unset for the default.`,
      );
    }
  }
}

/** Check that every entry of the numeric array option `key` of `o` fits `rule`. */
export function checkNumberList(where: string, key: string, v: unknown, rule: NumberRule): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || !v.every((x) => fitsRule(x, rule))) {
    throw new InputError(
      `${where}: option ${key} = ${show(v)} is out of range; it must be a list of ${describeRule(rule)}s. ` +
        `Fix the list, or leave ${key} unset for the default.`,
    );
  }
}

/** Check that option `key` is one of `allowed` (when set). */
export function checkChoice<T extends string>(
  where: string,
  key: string,
  v: unknown,
  allowed: readonly T[],
): void {
  if (v === undefined) return;
  if (!allowed.includes(v as T)) {
    throw new InputError(
      `${where}: ${key} ${show(v)} is not one of ${allowed.join(", ")}. Use one of those values.`,
    );
  }
}

/**
 * Check class labels: `y` integers in [0, numClasses). Throws {@link InputError} naming the first bad
 * label and its index. `what` names the data, e.g. "boundaryDistances samples".
 */
export function checkLabels(y: Int32Array, numClasses: number, what: string): void {
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) {
    throw new InputError(
      `${what}: numClasses ${numClasses} is not a positive integer; pass the class count K`,
    );
  }
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!(Number.isInteger(v) && v >= 0 && v < numClasses)) {
      throw new InputError(
        `${what}: label ${v} at index ${i} is not a class id in 0..${numClasses - 1}; ` +
          `labels must be integers below K = ${numClasses} (check the dataset's numClasses and label column)`,
      );
    }
  }
}

/** Largest seed accepted (`Number.MAX_SAFE_INTEGER`). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/**
 * Check that `seed` is a non-negative safe integer (0 … 2^53 − 1); returns it. A NaN, fractional,
 * negative or non-number seed would silently collapse onto another seed's stream (or onto 0), so it
 * is rejected wherever a seed enters the kit.
 */
export function checkSeed(seed: unknown, where: string): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
    throw new InputError(
      `${where}: seed ${show(seed)} is not a non-negative integer (0 … ${MAX_SEED}). ` +
        `Pass an integer seed such as 1 (a notebook's \`seed\` parameter must be a whole number).`,
    );
  }
  return seed;
}
