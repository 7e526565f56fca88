/**
 * `lib/oracle`: teachers behind explicit access levels (`label`, `probs`, `logits+grad`), each with an
 * exact query {@link Ledger} and budgets that are never exceeded.
 *
 * @module
 */
export { checkQueryImages, findNonFinitePixel, nonFiniteMessage, QueryInputError } from "./admission.ts";
export {
  type BudgetOptions,
  type ChargeRequest,
  type KindCounts,
  Ledger,
  LedgerInputError,
  type LedgerSnapshot,
  NO_SAMPLE,
  type PhaseEntry,
  QUERY_KINDS,
  type QueryKind,
  type Reservation,
  type SampleEntry,
  sumBySample,
} from "./ledger.ts";
export {
  GRAD_ENGINES,
  type GradEngine,
  gradEngineChoice,
  type GradEngineInfo,
  parseGradEngine,
  type TfjsGradEngineInfo,
} from "./grad_engine.ts";
export { JournalError, type JournalRecord, LedgerJournal, readJournal } from "./journal.ts";
export {
  type AccessLevel,
  BudgetExceededError,
  type LabelAnswer,
  type LabelOracle,
  labelOracle,
  type LabelPredictor,
  type LogitsGradOptions,
  type LogitsGradOracle,
  logitsGradOracle,
  type LogitsPredictor,
  type OracleBase,
  OracleError,
  oracleLedger,
  type OracleOptions,
  type ProbsOracle,
  probsOracle,
  type QueryTag,
  type TeacherSource,
} from "./oracle.ts";
