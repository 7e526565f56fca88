/**
 * Disk cache of decompressed `.gz` dataset files, so repeat loads skip gunzip (about 0.35 s for the
 * Fashion-MNIST training images on one core; reading the cached copy takes about 0.04 s).
 *
 * Entries live in `<cacheDir>/gunzip/<key>.bin` with the content's SHA-256 beside it in
 * `<key>.sha256`; the key is derived from the source's real path, size and modification time. The
 * content is re-hashed on every read (cheap next to gunzip) and a stale or damaged entry is simply
 * rebuilt, so the cache can never change what a load returns. Writes are atomic (temp file + rename),
 * so several processes may share one cache.
 */
import { mkdir, readFile, realpath, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sha256Hex } from "./checksums.ts";
import { gunzipIfNeeded } from "./idx.ts";
import { DatasetError } from "./errors.ts";

/** Options of {@link readDecompressed}. */
export interface ReadDecompressedOptions {
  /** Cache folder (e.g. `<repo>/data/cache`); `null` disables the cache. */
  cacheDir: string | null;
  /** Fix text for errors about this file (missing, truncated gzip). */
  fix?: string;
}

/** Content of a dataset file after decompression. */
export interface DecompressedFile {
  /** Uncompressed bytes. */
  bytes: Uint8Array;
  /** SHA-256 (hex) of `bytes`. */
  sha256: string;
  /** Whether the source was gzip. */
  gzip: boolean;
  /** Whether `bytes` came from the cache. */
  fromCache: boolean;
}

/**
 * Read `path`, gunzip it if it is gzip (cached when `cacheDir` is set), and hash the content.
 * A missing file throws a {@link DatasetError} of kind `"missing"`; a bad gzip stream one of kind
 * `"gzip"`. Cache problems are never errors: the file is then decompressed afresh.
 */
export async function readDecompressed(
  path: string,
  opts: ReadDecompressedOptions,
): Promise<DecompressedFile> {
  const cachePaths = opts.cacheDir !== null && path.endsWith(".gz")
    ? await cacheEntry(path, opts.cacheDir)
    : null;
  if (cachePaths) {
    const hit = await readEntry(cachePaths);
    if (hit) return { bytes: hit.bytes, sha256: hit.sha256, gzip: true, fromCache: true };
  }
  const raw = await readSource(path, opts.fix);
  const bytes = gunzipIfNeeded(raw, path, opts.fix);
  const gzip = bytes !== raw;
  const sha256 = sha256Hex(bytes);
  if (cachePaths && gzip) await writeEntry(cachePaths, bytes, sha256);
  return { bytes, sha256, gzip, fromCache: false };
}

/** Read a whole file as bytes; a missing file becomes a {@link DatasetError} naming it. */
export async function readSource(path: string, fix?: string): Promise<Uint8Array> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new DatasetError("dataset file not found or unreadable", {
      kind: "missing",
      file: path,
      fix,
      cause: e,
    });
  }
}

interface EntryPaths {
  bin: string;
  sum: string;
}

async function cacheEntry(path: string, cacheDir: string): Promise<EntryPaths | null> {
  try {
    const real = await realpath(path);
    const st = await stat(real);
    const key = sha256Hex(new TextEncoder().encode(`${real}\n${st.size}\n${st.mtimeMs}`)).slice(0, 32);
    const dir = join(cacheDir, "gunzip");
    return { bin: join(dir, `${key}.bin`), sum: join(dir, `${key}.sha256`) };
  } catch {
    return null; // source missing: let readSource report it
  }
}

async function readEntry(p: EntryPaths): Promise<{ bytes: Uint8Array; sha256: string } | null> {
  try {
    const want = (await readFile(p.sum, "utf8")).trim();
    const b = await readFile(p.bin);
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const sha256 = sha256Hex(bytes);
    return sha256 === want ? { bytes, sha256 } : null;
  } catch {
    return null;
  }
}

async function writeEntry(p: EntryPaths, bytes: Uint8Array, sha256: string): Promise<void> {
  const tag = `${Deno.pid}-${Math.floor(performance.now() * 1000)}`;
  const tmpBin = `${p.bin}.tmp-${tag}`;
  const tmpSum = `${p.sum}.tmp-${tag}`;
  try {
    await mkdir(join(p.bin, ".."), { recursive: true });
    await writeFile(tmpBin, bytes);
    await writeFile(tmpSum, sha256 + "\n");
    await rename(tmpBin, p.bin);
    await rename(tmpSum, p.sum);
  } catch {
    await unlink(tmpBin).catch(() => {});
    await unlink(tmpSum).catch(() => {});
  }
}
