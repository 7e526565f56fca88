/**
 * The label oracle of one attempt of a unit that queries a teacher: every answered call is journaled
 * in the unit's work folder (`lib/runner/journal.ts`), and the queries earlier attempts paid before they
 * died are replayed from their journals — reported as `lost` and taken off each sample's budget.
 *
 * @module
 */
import { Ledger, type LedgerSnapshot } from "../oracle/ledger.ts";
import type { LabelOracle } from "../oracle/oracle.ts";
import type { UnitContext } from "../runner/family.ts";
import { JOURNAL_PREFIX, journaledOracle, ledgerFromJournals, otherJournals } from "../runner/journal.ts";
import type { OpenTeacher } from "./open_teacher.ts";

/** A unit's oracle (see the module doc). Close it when done. */
export interface UnitOracle {
  oracle: LabelOracle & { close(): void };
  /** Queries paid by earlier attempts of this unit that died (replayed from their journals). */
  lost: LedgerSnapshot;
  close(): void;
}

/**
 * A journaled label oracle for attempt `ctx.attempt` of a unit. `perSample` is the per-sample query budget
 * (null: none) and `budgets` a sample's budget left before this unit where it differs; queries that dead
 * attempts paid are taken off both.
 */
export async function unitOracle(
  ctx: Pick<UnitContext, "workDir" | "attempt">,
  teacher: OpenTeacher,
  perSample: number | null = null,
  budgets: Map<number, number> = new Map(),
): Promise<UnitOracle> {
  const journal = `${ctx.workDir}/${JOURNAL_PREFIX}${ctx.attempt}.jsonl`;
  const lost = await ledgerFromJournals(await otherJournals(ctx.workDir, journal));
  const ledger = new Ledger(perSample === null ? {} : { perSample });
  if (perSample !== null) {
    const ids = new Set([...budgets.keys(), ...Object.keys(lost.bySample).map(Number)]);
    for (const id of ids) {
      if (id < 0) continue;
      const b = (budgets.get(id) ?? perSample) - (lost.bySample[String(id)]?.spent ?? 0);
      ledger.setSampleBudget(id, Math.max(0, b));
    }
  }
  const oracle = journaledOracle(await teacher.labelOracle(ledger), journal);
  return { oracle, lost, close: () => oracle.close() };
}
