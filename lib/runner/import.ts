/**
 * Importing finished units from another run store: every done unit of `from` whose key is in the
 * target store's plan is copied in (files hard-linked when both stores are on one file system), so a
 * finished labeling run feeds a new experiment without redoing anything. A key names the unit's
 * inputs exactly (spec fields, teacher fingerprint, sample range), so equal keys mean equal work.
 *
 * @module
 */
import { DONE_FILE, type RunStore } from "./store.ts";

/** What {@link importUnits} did. */
export interface ImportReport {
  /** Units copied in, by level name. */
  imported: Record<string, number>;
  /** Units of the plan already done in the target (left alone). */
  alreadyDone: number;
  /** Files hard-linked, and files copied (another file system). */
  linked: number;
  copied: number;
}

/** Copy every done unit of `from` whose key the target's plan has (see the module doc). */
export async function importUnits(target: RunStore, from: RunStore): Promise<ImportReport> {
  const report: ImportReport = { imported: {}, alreadyDone: 0, linked: 0, copied: 0 };
  for (const level of target.plan.levels) {
    for (const key of level.keys) {
      if (await target.isDone(key)) {
        report.alreadyDone++;
        continue;
      }
      if (!(await from.isDone(key))) continue;
      const src = from.unitDir(key);
      const tmp = `${target.root}/units/.import-${key}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
      await Deno.mkdir(tmp, { recursive: true });
      try {
        const names: string[] = [];
        for await (const e of Deno.readDir(src)) if (e.isFile && e.name !== DONE_FILE) names.push(e.name);
        // done.json last, as a commit writes it: a folder without it is never read.
        for (const name of [...names, DONE_FILE]) {
          try {
            await Deno.link(`${src}/${name}`, `${tmp}/${name}`);
            report.linked++;
          } catch {
            await Deno.copyFile(`${src}/${name}`, `${tmp}/${name}`);
            report.copied++;
          }
        }
        await Deno.rename(tmp, target.unitDir(key));
        report.imported[level.name] = (report.imported[level.name] ?? 0) + 1;
      } catch (e) {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
        if (!(await target.isDone(key))) throw e;
      }
    }
  }
  return report;
}
