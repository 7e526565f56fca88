/**
 * A file-system `tf.io.IOHandler` for Deno: reads and writes a TF.js model folder (`model.json` plus
 * the weight shards its `weightsManifest` names), the layout `tensorflowjs_converter` and
 * `model.save("file://…")` produce. Works for LayersModel and GraphModel folders alike; needs neither
 * tfjs-node nor a browser.
 *
 * Errors name the file and say what to do ({@link TeacherFileError}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** A model file that is missing, unreadable or inconsistent. */
export class TeacherFileError extends Error {
  /** The offending file. */
  readonly file: string;

  /** `problem` says what is wrong, `fix` what to do about it. */
  constructor(file: string, problem: string, fix = "re-export the model folder") {
    super(`teacher file ${file}: ${problem}. Fix: ${fix}.`);
    this.name = "TeacherFileError";
    this.file = file;
  }
}

/** Options of {@link fileSystemIO}. */
export interface FileSystemIOOptions {
  /** Name of the topology file inside the folder (default `model.json`). */
  modelFile?: string;
  /** Name of the single weight shard written by `save` (default `weights.bin`). */
  weightsFile?: string;
}

function cleanDir(dir: string): string {
  return dir.replace(/^file:\/\//, "").replace(/\/+$/, "") || "/";
}

async function readModelJson(file: string): Promise<tf.io.ModelJSON> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const problem = e instanceof Deno.errors.NotFound
      ? "is missing"
      : `cannot be read (${(e as Error).message})`;
    throw new TeacherFileError(file, problem, "point the loader at a folder holding model.json");
  }
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TeacherFileError(file, `is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || !("modelTopology" in json)) {
    throw new TeacherFileError(file, "has no `modelTopology` (not a TF.js model.json)");
  }
  return json;
}

async function readShards(
  dir: string,
  modelFile: string,
  manifest: tf.io.WeightsManifestConfig,
): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const specs = tf.io.getWeightSpecs(manifest);
  const parts: Uint8Array[] = [];
  for (const group of manifest) {
    for (const path of group.paths) {
      const file = `${dir}/${path.replace(/^\.\//, "")}`;
      try {
        parts.push(await Deno.readFile(file));
      } catch (e) {
        const problem = e instanceof Deno.errors.NotFound
          ? `is missing (named in ${modelFile})`
          : `cannot be read (${(e as Error).message})`;
        throw new TeacherFileError(file, problem, "copy every weight shard next to model.json");
      }
    }
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const need = specs.reduce((a, s) => a + bytesOf(s), 0);
  if (need > 0 && total < need) {
    throw new TeacherFileError(
      `${dir}/${manifest[0]?.paths[0] ?? "weights"}`,
      `the shards hold ${total} bytes but ${modelFile} describes ${need}`,
      "the shards are truncated or belong to another model.json: re-export",
    );
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return [specs, out.buffer];
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2 };

function bytesOf(s: tf.io.WeightsManifestEntry): number {
  const n = s.shape.reduce((a, b) => a * b, 1);
  if (s.quantization) {
    const q = s.quantization.dtype;
    return n * (q === "uint8" ? 1 : q === "uint16" || q === "float16" ? 2 : 4);
  }
  return n * (DTYPE_BYTES[s.dtype] ?? 4);
}

/**
 * An IOHandler over the folder `dir`: `load()` reads `model.json` and its shards, `save()` writes
 * `model.json` and one `weights.bin` (creating the folder). Use with `tfl.loadLayersModel(handler)`,
 * `loadGraphModel(handler)` or `model.save(handler)`.
 */
export function fileSystemIO(dir: string, opts: FileSystemIOOptions = {}): tf.io.IOHandler {
  const root = cleanDir(dir);
  const modelFile = opts.modelFile ?? "model.json";
  const weightsFile = opts.weightsFile ?? "weights.bin";
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const file = `${root}/${modelFile}`;
      const json = await readModelJson(file);
      return await tf.io.getModelArtifactsForJSON(json, (m) => readShards(root, file, m));
    },
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error(
          "fileSystemIO.save: binary (GraphDef) topologies are not supported; save a LayersModel",
        );
      }
      await Deno.mkdir(root, { recursive: true });
      const data = artifacts.weightData === undefined
        ? new ArrayBuffer(0)
        : new tf.io.CompositeArrayBuffer(artifacts.weightData).slice();
      const manifest: tf.io.WeightsManifestConfig = [{
        paths: [`./${weightsFile}`],
        weights: artifacts.weightSpecs ?? [],
      }];
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        weightsManifest: manifest,
        format: artifacts.format ?? "layers-model",
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
      };
      if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) json.userDefinedMetadata = artifacts.userDefinedMetadata;
      await Deno.writeFile(`${root}/${weightsFile}`, new Uint8Array(data));
      await Deno.writeTextFile(`${root}/${modelFile}`, JSON.stringify(json) + "\n");
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}
