/**
 * The run store: a folder (local disk or a shared file system) holding one run.
 *
 *   run.json              the plan (spec, teacher fingerprint, levels and unit keys)
 *   units/<key>/          a finished unit's outputs; `done.json` is written last, so a folder
 *                         without it does not exist as far as the runner is concerned
 *   work/<key>/           a unit's scratch space across attempts (journals of teacher queries)
 *   claims/<key>.json     who runs the unit now: {pid, host, since}; created exclusively, touched
 *                         by its holder every 30 s (see `RunStore.claim` for when it is stale)
 *   logs/                 executor logs (one file per unit process)
 *
 * A unit is committed atomically: its files go into a temp folder beside `units/`, each is fsynced,
 * `done.json` comes last, then the folder is renamed to `units/<key>`. A killed unit leaves at most a
 * temp folder, which is never read.
 *
 * @module
 */
import { hostname } from "node:os";
import { canonicalJson } from "./hash.ts";
import { planIdentity, type RunPlan, validatePlan } from "./plan.ts";

/** Name of the marker every finished unit has. */
export const DONE_FILE = "done.json";

/** How often a claim's holder touches the claim file. */
export const CLAIM_HEARTBEAT_SEC = 30;

/** Default age after which an untouched claim from another host is stale (10 missed heartbeats). */
export const CLAIM_STALE_SEC = 300;

/** Who holds a unit. */
export interface ClaimInfo {
  pid: number;
  host: string;
  since: string;
}

/** A held claim; `release()` removes it. */
export interface Claim {
  info: ClaimInfo;
  release(): Promise<void>;
}

/** Raised when a store is missing or holds another run. */
export class RunStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunStoreError";
  }
}

/** True when a process with this pid exists on this machine. */
export function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
}

async function syncDir(path: string): Promise<void> {
  try {
    const d = await Deno.open(path, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Some file systems do not allow opening a directory; the rename is still atomic there.
  }
}

/** One run's folder; see the module doc for the layout. */
export class RunStore {
  /** Seconds after which a claim from another host that was not touched is stale. */
  staleAfterSec: number = CLAIM_STALE_SEC;
  /**
   * When this process created or opened the store: the start of this execution. A unit whose outputs
   * were committed before it finished in an earlier execution (its records are that execution's).
   */
  readonly openedAt: Date = new Date();

  private constructor(readonly root: string, readonly plan: RunPlan) {}

  /**
   * Create the store for `plan`, or open it when it already holds the same run (same
   * {@link planIdentity}; newer resources or estimates replace the stored ones). A store holding a
   * different run is an error: finished units of another spec must never be mixed in.
   */
  static async create(root: string, plan: RunPlan): Promise<RunStore> {
    validatePlan(plan);
    const text = canonicalJson(plan);
    const identity = canonicalJson(planIdentity(plan));
    let old: string | undefined;
    try {
      old = await Deno.readTextFile(`${root}/run.json`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (old !== undefined && canonicalJson(planIdentity(JSON.parse(old) as RunPlan)) !== identity) {
      throw new RunStoreError(
        `run store ${root} holds a different run (another spec, teacher or code version); ` +
          `pass a new --store folder, or delete ${root} to start over`,
      );
    }
    for (const d of ["units", "work", "claims", "logs"]) {
      await Deno.mkdir(`${root}/${d}`, { recursive: true });
    }
    if (old === undefined || canonicalJson(JSON.parse(old)) !== text) {
      const tmp = `${root}/run.json.tmp-${Deno.pid}`;
      await writeSynced(tmp, JSON.stringify(plan, null, 1) + "\n");
      await Deno.rename(tmp, `${root}/run.json`);
    }
    return new RunStore(root, plan);
  }

  /** Open an existing store; a missing one is an error saying how to make it. */
  static async open(root: string): Promise<RunStore> {
    let text: string;
    try {
      text = await Deno.readTextFile(`${root}/run.json`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new RunStoreError(
          `no run store at ${root} (no run.json): start one with \`bkd run --store ${root} …\``,
        );
      }
      throw e;
    }
    const plan = JSON.parse(text) as RunPlan;
    validatePlan(plan);
    return new RunStore(root, plan);
  }

  /** Folder of a finished unit. */
  unitDir(key: string): string {
    return `${this.root}/units/${key}`;
  }

  /** Scratch folder of a unit (created on demand). */
  async workDir(key: string): Promise<string> {
    const d = `${this.root}/work/${key}`;
    await Deno.mkdir(d, { recursive: true });
    return d;
  }

  /** Whether the unit has its done marker. */
  async isDone(key: string): Promise<boolean> {
    try {
      await Deno.stat(`${this.unitDir(key)}/${DONE_FILE}`);
      return true;
    } catch {
      return false;
    }
  }

  /** A finished unit's text file. */
  readText(key: string, name: string): Promise<string> {
    return Deno.readTextFile(`${this.unitDir(key)}/${name}`);
  }

  /** A finished unit's binary file. */
  readBytes(key: string, name: string): Promise<Uint8Array> {
    return Deno.readFile(`${this.unitDir(key)}/${name}`);
  }

  /** Who holds the unit now; a stale claim (see {@link RunStore.claim}) counts as nobody. */
  async claimHolder(key: string): Promise<ClaimInfo | undefined> {
    const held = await this.#readClaim(this.#claimPath(key));
    return held && !this.#stale(held) ? held.info : undefined;
  }

  /**
   * Claim a unit exclusively. Returns the claim, or `undefined` when a live process holds it. The
   * holder touches the claim file every {@link CLAIM_HEARTBEAT_SEC} seconds until it releases it. A
   * claim is stale, and taken over, when its pid is dead on this host, or, from another host (a
   * cluster node, whose pids this machine cannot see), when it was not touched for `staleAfterSec`.
   * Two processes judging the same stale claim at once may both run the unit; the first commit
   * wins and the other's outputs are discarded.
   */
  async claim(key: string): Promise<Claim | undefined> {
    const path = this.#claimPath(key);
    const info: ClaimInfo = { pid: Deno.pid, host: hostname(), since: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const f = await Deno.open(path, { write: true, createNew: true });
        try {
          await f.write(new TextEncoder().encode(JSON.stringify(info)));
          await f.sync();
        } finally {
          f.close();
        }
        const beat = setInterval(() => {
          const now = new Date();
          Deno.utime(path, now, now).catch(() => {});
        }, CLAIM_HEARTBEAT_SEC * 1000);
        Deno.unrefTimer(beat);
        return {
          info,
          release: () => {
            clearInterval(beat);
            return Deno.remove(path).catch(() => {});
          },
        };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        const held = await this.#readClaim(path);
        if (held && !this.#stale(held)) return undefined;
        if (held) await Deno.remove(path).catch(() => {});
        else await new Promise((r) => setTimeout(r, 20)); // being written or just removed: look again
      }
    }
    return undefined;
  }

  async #readClaim(path: string): Promise<{ info: ClaimInfo; touchedMs: number } | undefined> {
    try {
      const [text, st] = await Promise.all([Deno.readTextFile(path), Deno.stat(path)]);
      return { info: JSON.parse(text) as ClaimInfo, touchedMs: st.mtime?.getTime() ?? Date.now() };
    } catch {
      return undefined;
    }
  }

  #stale(held: { info: ClaimInfo; touchedMs: number }): boolean {
    if (held.info.host === hostname()) return !pidAlive(held.info.pid);
    return Date.now() - held.touchedMs > this.staleAfterSec * 1000;
  }

  /**
   * Commit a unit's outputs atomically (see the module doc). If the unit is already done (another
   * process won a race), the new outputs are discarded and `false` is returned.
   */
  async commit(key: string, files: Record<string, string | Uint8Array>, done: unknown): Promise<boolean> {
    if (await this.isDone(key)) return false;
    const tmp = `${this.root}/units/.tmp-${key}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(tmp, { recursive: true });
    try {
      for (const [name, data] of Object.entries(files)) {
        if (name === DONE_FILE || name.includes("/")) {
          throw new Error(`unit output name "${name}" is not allowed`);
        }
        await writeSynced(`${tmp}/${name}`, data);
      }
      await writeSynced(`${tmp}/${DONE_FILE}`, JSON.stringify(done, null, 1) + "\n");
      await syncDir(tmp);
      await Deno.rename(tmp, this.unitDir(key));
      await syncDir(`${this.root}/units`);
      return true;
    } catch (e) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      if (await this.isDone(key)) return false;
      throw e;
    }
  }

  #claimPath(key: string): string {
    return `${this.root}/claims/${key}.json`;
  }
}
