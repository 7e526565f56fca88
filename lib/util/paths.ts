/**
 * Repository-relative locations. Notebooks run with their own folder as the working directory, so
 * every default path the kit writes to (data/, results/) is resolved from the repository root,
 * never from the current directory.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

/** Absolute path of the repository root (the folder holding `lib/`). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

/** Absolute path of `results/<parts…>` in the repository. */
export function resultsPath(...parts: string[]): string {
  return resolve(repoRoot(), "results", ...parts);
}
