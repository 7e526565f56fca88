/**
 * The teacher of a zsdb3kd spec: opened with label access only (a kit recipe, a model folder or a label
 * endpoint whose token comes from `BKD_TEACHER_TOKEN`), checked against the fingerprint the run was
 * planned with, and journaled label oracles for the units.
 *
 * @module
 */
import { initBackend } from "../backend.ts";
import { loadDataset } from "../data/datasets.ts";
import type { DatasetName, LabeledData } from "../data/types.ts";
import { evaluate } from "../learn/evaluate.ts";
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import type { UnitContext } from "../runner/family.ts";
import { JOURNAL_PREFIX, journaledOracle, ledgerFromJournals, otherJournals } from "../runner/journal.ts";
import { type Db3LabelTeacher, TEACHER_TOKEN_ENV } from "./db3_label_spec.ts";
import { type OpenTeacher, openTeacher } from "./open_teacher.ts";
import type { TeacherSource } from "./teacher_source.ts";
import type { TeacherEngine } from "../native/teacher_predictor.ts";

/** The spec fields the teacher depends on. */
interface TeacherSpec {
  dataset: DatasetName;
  teacher: Db3LabelTeacher;
  engine: TeacherEngine;
}

async function openSpecTeacher(spec: TeacherSpec): Promise<OpenTeacher> {
  await initBackend();
  const token = spec.teacher.kind === "http" ? Deno.env.get(TEACHER_TOKEN_ENV) : undefined;
  const source = (token ? { ...spec.teacher, token } : spec.teacher) as TeacherSource;
  const probe = await loadDataset(spec.dataset, "test", { limit: 1 });
  return await openTeacher(source, {
    need: "label",
    method: "ZSDB3KD",
    expect: { inputShape: probe.shape.slice(1), numClasses: probe.numClasses },
    engine: spec.engine,
  });
}

/** The teacher's cache identity (a recipe teacher is trained and cached on first use). */
export async function resolveZsTeacher(spec: TeacherSpec): Promise<{ fingerprint: string }> {
  const t = await openSpecTeacher(spec);
  const out = { fingerprint: t.fingerprint };
  t.close();
  t.model?.dispose();
  return out;
}

/** Open the teacher and check it is the one the run was planned with. Close and dispose it after use. */
export async function loadZsTeacher(spec: TeacherSpec, expected: string): Promise<OpenTeacher> {
  const t = await openSpecTeacher(spec);
  if (t.fingerprint !== expected) {
    t.close();
    t.model?.dispose();
    throw new Error(
      `teacher fingerprint ${t.fingerprint.slice(0, 12)} differs from the run's ${expected.slice(0, 12)}: ` +
        `the teacher changed since the run was planned; restore it (BKD_TEACHER_DIR, the folder, or the ` +
        `endpoint's model) or start a new run store`,
    );
  }
  return t;
}

/** A unit's oracle: journaled, with per-sample budgets that subtract what earlier attempts paid. */
export interface UnitOracle {
  oracle: LabelOracle;
  /** Queries paid by earlier attempts of this unit that died (replayed from their journals). */
  lost: LedgerSnapshot;
  close(): void;
}

/**
 * A journaled label oracle for one attempt of a unit. `budget(id)` is a sample's budget before this
 * unit (null: no per-sample budget); queries that dead attempts paid are taken off it.
 */
export async function unitOracle(
  ctx: UnitContext,
  teacher: OpenTeacher,
  perSample: number,
  budgets: Map<number, number>,
): Promise<UnitOracle> {
  const journal = `${ctx.workDir}/${JOURNAL_PREFIX}${ctx.attempt}.jsonl`;
  const lost = await ledgerFromJournals(await otherJournals(ctx.workDir, journal));
  const ledger = new Ledger({ perSample });
  const ids = new Set([...budgets.keys(), ...Object.keys(lost.bySample).map(Number)]);
  for (const id of ids) {
    if (id < 0) continue;
    const b = (budgets.get(id) ?? perSample) - (lost.bySample[String(id)]?.spent ?? 0);
    ledger.setSampleBudget(id, Math.max(0, b));
  }
  const oracle = journaledOracle(await teacher.labelOracle(ledger), journal);
  return { oracle, lost, close: () => oracle.close() };
}

/** The teacher's test accuracy: its recipe metadata, its model, else its labels (an endpoint). */
export async function teacherTestAcc(t: OpenTeacher, test: LabeledData): Promise<number> {
  if (t.meta) return t.meta.testAcc;
  if (t.model) return await evaluate(t.model, test);
  const n = test.y.length;
  const { labels } = await (await t.labelOracle()).labels(test.x, n, { phase: "teacher.test" });
  return labels.reduce((s, v, i) => s + (v === test.y[i] ? 1 : 0), 0) / n;
}
