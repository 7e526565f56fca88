/**
 * Make a kit teacher look like one trained elsewhere: rewrite a TF.js LayersModel folder of a plain
 * conv net (channels-last, [0,1] inputs) as the folder a PyTorch model exported to TF.js would be —
 * channels-first layers taking NCHW inputs on a `range` scale (e.g. [0,255]) normalised per channel
 * by `mean`/`std`. The network computes the same function: the normalisation is folded into the first
 * convolution (exact for `valid` padding) and the first dense layer after the flatten gets its rows
 * permuted from (h, w, c) to PyTorch's (c, h, w) order.
 *
 * Used by the bring-your-own-teacher demo and tests: loading the result with
 * `loadTeacher(dir, {input: {layout: "NCHW", range, mean, std}})` must reproduce the original labels.
 * Supported layers: InputLayer, Conv2D (valid), MaxPooling2D, AveragePooling2D, Activation, ReLU,
 * Flatten, Dense, Dropout; anything else is an error naming the layer.
 *
 * @module
 */

/** How the exported model expects its input. */
export interface ForeignExportOptions {
  /** Value range of the inputs it was "trained" on (default [0, 255]). */
  range?: readonly [number, number];
  /** Per-channel mean in the units of `range` (default 0). */
  mean?: readonly number[];
  /** Per-channel std in the units of `range` (default 1). */
  std?: readonly number[];
  /** `generatedBy` written into model.json. */
  generatedBy?: string;
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
}

/**
 * Read the channels-last folder `src` and write its channels-first, normalised-input twin to `dst`
 * (see the module doc).
 */
export async function exportChannelsFirst(
  src: string,
  dst: string,
  opts: ForeignExportOptions = {},
): Promise<void> {
  const model = JSON.parse(await Deno.readTextFile(`${src}/model.json`));
  const topo = model.modelTopology?.model_config ?? model.modelTopology;
  const layers: LayerJson[] = topo?.config?.layers;
  if (!Array.isArray(layers)) throw new Error(`${src}/model.json: no layer list (not a LayersModel)`);
  const manifest: { paths: string[]; weights: WeightEntry[] }[] = model.weightsManifest;
  const chunks: Uint8Array[] = [];
  for (const g of manifest) {
    for (const p of g.paths) chunks.push(await Deno.readFile(`${src}/${p.replace(/^\.\//, "")}`));
  }
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  chunks.reduce((o, c) => (all.set(c, o), o + c.length), 0);
  const flat = new Float32Array(all.buffer);
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  let off = 0;
  for (const w of manifest.flatMap((g) => g.weights)) {
    if (w.dtype !== "float32") throw new Error(`weight ${w.name}: dtype ${w.dtype} not supported`);
    const size = w.shape.reduce((a, b) => a * b, 1);
    weights.set(w.name, { shape: w.shape, data: flat.slice(off, off + size) });
    off += size;
  }
  const [lo, hi] = [opts.range?.[0] ?? 0, opts.range?.[1] ?? 255];
  const out: LayerJson[] = [];
  const outWeights: { name: string; shape: number[]; data: Float32Array }[] = [];
  let hwc: number[] = [];
  let folded = false;
  let permute: { h: number; w: number; c: number } | null = null;
  const get = (layer: string, what: string) => {
    const w = weights.get(`${layer}/${what}`);
    if (!w) throw new Error(`weight ${layer}/${what} missing from ${src}`);
    return w;
  };
  for (const l of layers) {
    const c = { ...l.config };
    const name = String(c.name);
    switch (l.class_name) {
      case "InputLayer": {
        const s = (c.batch_input_shape ?? c.batchInputShape) as number[];
        hwc = s.slice(1);
        out.push({
          class_name: "InputLayer",
          config: { ...c, batch_input_shape: [null, hwc[2], hwc[0], hwc[1]] },
        });
        break;
      }
      case "Conv2D": {
        if (c.padding !== "valid") {
          throw new Error(`layer ${name}: only valid padding can be exported exactly`);
        }
        const k = get(name, "kernel"), b = get(name, "bias");
        const [kh, kw, cin, cout] = k.shape;
        const kernel = k.data.slice(), bias = b.data.slice();
        if (!folded) {
          // x = lo' + … : v = (u − mean)/std with u = lo + (hi − lo)·x  ⇒  x = (std·v + mean − lo)/(hi − lo)
          for (let i = 0; i < kh * kw; i++) {
            for (let ci = 0; ci < cin; ci++) {
              const m = opts.mean?.[opts.mean.length === 1 ? 0 : ci] ?? 0;
              const s = opts.std?.[opts.std.length === 1 ? 0 : ci] ?? 1;
              for (let co = 0; co < cout; co++) {
                const at = (i * cin + ci) * cout + co;
                bias[co] += k.data[at] * (m - lo) / (hi - lo);
                kernel[at] = k.data[at] * s / (hi - lo);
              }
            }
          }
          folded = true;
        }
        const st = (c.strides as number[]) ?? [1, 1];
        hwc = [Math.floor((hwc[0] - kh) / st[0]) + 1, Math.floor((hwc[1] - kw) / st[1]) + 1, cout];
        out.push({ class_name: "Conv2D", config: { ...c, data_format: "channels_first" } });
        outWeights.push({ name: `${name}/kernel`, shape: k.shape, data: kernel }, {
          name: `${name}/bias`,
          shape: b.shape,
          data: bias,
        });
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D": {
        const p = c.pool_size as number[], st = (c.strides as number[]) ?? p;
        if (c.padding !== "valid") throw new Error(`layer ${name}: only valid pooling is supported`);
        hwc = [Math.floor((hwc[0] - p[0]) / st[0]) + 1, Math.floor((hwc[1] - p[1]) / st[1]) + 1, hwc[2]];
        out.push({ class_name: l.class_name, config: { ...c, data_format: "channels_first" } });
        break;
      }
      case "Activation":
      case "ReLU":
      case "Dropout":
        out.push({ class_name: l.class_name, config: c });
        break;
      case "Flatten":
        // Flatten the NCHW tensor as it lies in memory (c, h, w): PyTorch's x.view(n, -1).
        if (hwc.length === 3) permute = { h: hwc[0], w: hwc[1], c: hwc[2] };
        hwc = [hwc.reduce((a, b) => a * b, 1)];
        out.push({ class_name: "Flatten", config: { ...c, data_format: "channels_last" } });
        break;
      case "Dense": {
        const k = get(name, "kernel"), b = get(name, "bias");
        let kernel = k.data;
        if (permute) {
          const { h, w, c: ch } = permute, units = k.shape[1];
          kernel = new Float32Array(k.data.length);
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              for (let z = 0; z < ch; z++) {
                const from = ((y * w + x) * ch + z) * units, to = ((z * h + y) * w + x) * units;
                kernel.set(k.data.subarray(from, from + units), to);
              }
            }
          }
          permute = null;
        }
        out.push({ class_name: "Dense", config: c });
        outWeights.push({ name: `${name}/kernel`, shape: k.shape, data: kernel }, {
          name: `${name}/bias`,
          shape: b.shape,
          data: b.data,
        });
        break;
      }
      default:
        throw new Error(`layer ${name} (${l.class_name}) is not supported by the channels-first exporter`);
    }
  }
  if (!folded && (opts.mean || opts.std || lo !== 0 || hi !== 1)) {
    throw new Error("the network has no convolution to fold the input normalisation into");
  }
  await Deno.mkdir(dst, { recursive: true });
  const total = outWeights.reduce((a, w) => a + w.data.length, 0);
  const bin = new Float32Array(total);
  outWeights.reduce((o, w) => (bin.set(w.data, o), o + w.data.length), 0);
  await Deno.writeFile(`${dst}/group1-shard1of1.bin`, new Uint8Array(bin.buffer));
  await Deno.writeTextFile(
    `${dst}/model.json`,
    JSON.stringify({
      format: "layers-model",
      generatedBy: opts.generatedBy ??
        "boundary-kd channels-first exporter (PyTorch-style NCHW, normalised input)",
      convertedBy: null,
      modelTopology: {
        keras_version: "2.15.0",
        backend: "tensorflow",
        model_config: {
          class_name: "Sequential",
          config: { name: `${topo.config.name ?? "model"}_nchw`, layers: out },
        },
      },
      weightsManifest: [{
        paths: ["group1-shard1of1.bin"],
        weights: outWeights.map(({ name, shape }) => ({ name, shape, dtype: "float32" })),
      }],
    }) + "\n",
  );
}
