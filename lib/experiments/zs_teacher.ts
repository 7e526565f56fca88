/**
 * The teacher of a zsdb3kd spec (opened with label access only, {@link ZS_TEACHER}, through
 * `openPlannedTeacher`) and journaled label oracles for the units.
 *
 * @module
 */
import type { LabeledData } from "../data/types.ts";
import { evaluate } from "../learn/evaluate.ts";
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import type { UnitContext } from "../runner/family.ts";
import { JOURNAL_PREFIX, journaledOracle, ledgerFromJournals, otherJournals } from "../runner/journal.ts";
import type { OpenTeacher, SpecTeacherOptions } from "./open_teacher.ts";

/** How the ZSDB3KD units and planner open the spec's teacher (labels only). */
export const ZS_TEACHER: SpecTeacherOptions = { need: "label", method: "ZSDB3KD" };

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
