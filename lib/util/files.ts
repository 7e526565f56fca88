/**
 * Small file helpers: atomic writes (temp file in the same folder + rename), so a crash or a
 * concurrent reader never sees half a file, and reads that treat a missing file as `undefined`.
 *
 * @module
 */

function parentOf(path: string): string | undefined {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : undefined;
}

/** Write `data` to `path` atomically, creating parent folders. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = parentOf(path);
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Whether `path` can be stat'ed (a file or folder is there); any error counts as "no". */
export async function pathExists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Read a text file, or `undefined` when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}
