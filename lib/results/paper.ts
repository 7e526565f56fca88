/**
 * Reference numbers from the papers (see `shared/spec/experiments.md`), as typed data.
 *
 * These are facts to compare measured numbers against. They are never used as measured values:
 * nothing in the kit may copy a paper number into a run record or a "measured" column.
 * Accuracies are in percent.
 *
 * @module
 */

/** A number as printed in a paper: mean, and the ± spread when the paper gives one. */
export interface PaperValue {
  /** Mean accuracy in percent. */
  mean: number;
  /** Standard deviation in percent, when given. */
  std?: number;
  /** True when the paper value is approximate (e.g. read off a bar chart as "≈"). */
  approx?: boolean;
}

/** Teacher access level a method needs. */
export type Access = "probs" | "label" | "logits+grad" | "internals";

/** One row of table A (main comparison, CAKE paper; ZSDB3KD rows as the CAKE paper quotes them). */
export interface TableARow {
  /** Method as printed. */
  method: string;
  /** Kit method key, for matching measured runs. */
  key: "kd" | "zsdb3kd" | "cake" | "dafl" | "deepinversion" | "deepdream";
  /** Access level. */
  access: Access;
  /** Dataset as printed (kit names where one exists). */
  dataset: string;
  /** Teacher architecture. */
  teacher: string;
  /** Student architecture. */
  student: string;
  /** Teacher accuracy (several numbers for the multi-setting white-box rows). */
  teacherAcc: PaperValue[];
  /** Student accuracy (several numbers for the multi-setting white-box rows). */
  studentAcc: PaperValue[];
  /** Remarks, e.g. how a multi-value cell reads. */
  note?: string;
}

const v = (mean: number, std?: number): PaperValue => (std === undefined ? { mean } : { mean, std });

/** Table A: the main comparison. */
export const TABLE_A: readonly TableARow[] = [
  row("KD (real data)", "kd", "probs", "mnist", "LeNet-5", "LeNet-5-half", [v(99.3)], [v(98.8)]),
  row("KD (real data)", "kd", "probs", "fmnist", "LeNet-5", "LeNet-5-half", [v(90.8)], [v(89.7)]),
  row("KD (real data)", "kd", "probs", "cifar10", "ResNet-34", "ResNet-18", [v(95.6)], [v(94.3)]),
  row("ZSDB3KD", "zsdb3kd", "label", "mnist", "LeNet-5", "LeNet-5-half", [v(99.3)], [v(96.5)]),
  row("ZSDB3KD", "zsdb3kd", "label", "fmnist", "LeNet-5", "LeNet-5-half", [v(91.6)], [v(72.3)]),
  row("ZSDB3KD", "zsdb3kd", "label", "cifar10", "AlexNet", "AlexNet-half", [v(79.3)], [v(59.5)]),
  row("CAKE", "cake", "logits+grad", "mnist", "LeNet-5", "LeNet-5-half", [v(99.3, 0.12)], [v(98.4, 0.18)]),
  row("CAKE", "cake", "logits+grad", "fmnist", "LeNet-5", "LeNet-5-half", [v(91.0, 0.12)], [v(76.5, 1.01)]),
  row("CAKE", "cake", "logits+grad", "svhn", "LeNet-5", "LeNet-5-half", [v(89.8, 0.38)], [v(62.9, 4.17)]),
  row("CAKE", "cake", "logits+grad", "svhn", "ResNet-34", "ResNet-18", [v(96.1, 0.08)], [v(94.2, 0.54)]),
  row("CAKE", "cake", "logits+grad", "cifar10", "ViT-8", "ViT-4", [v(73.2, 0.76)], [v(53.8, 5.63)]),
  row("CAKE", "cake", "logits+grad", "cifar10", "ResNet-34", "ResNet-18", [v(91.8, 0.11)], [v(78.9, 2.59)]),
  row(
    "DAFL (white-box)",
    "dafl",
    "internals",
    "mnist / cifar10",
    "LeNet-5 / ResNet-34",
    "LeNet-5-half / ResNet-18",
    [v(97.9), v(93.7)],
    [v(97.6), v(90.4)],
    "two settings: MNIST LeNet-5 → half, then CIFAR-10 R34 → R18",
  ),
  row(
    "DeepInversion / ADI (white-box)",
    "deepinversion",
    "internals",
    "cifar10",
    "ResNet-34",
    "ResNet-18",
    [v(95.4)],
    [v(91.4), v(93.3)],
    "two student numbers: DeepInversion, then ADI",
  ),
  row("DeepDream", "deepdream", "logits+grad", "cifar10", "ResNet-34", "ResNet-18", [v(95.4)], [v(30.0)]),
];

function row(
  method: string,
  key: TableARow["key"],
  access: Access,
  dataset: string,
  teacher: string,
  student: string,
  teacherAcc: PaperValue[],
  studentAcc: PaperValue[],
  note?: string,
): TableARow {
  return {
    method,
    key,
    access,
    dataset,
    teacher,
    student,
    teacherAcc,
    studentAcc,
    ...(note ? { note } : {}),
  };
}

/** One number of table B (DB3 with training data); all from secondary sources. */
export interface TableBRow {
  /** Method as printed. */
  method: "standard KD" | "DB3-MBD";
  /** Kit method key. */
  key: "kd" | "db3-mbd";
  /** Dataset. */
  dataset: "mnist" | "cifar10";
  /** Teacher architecture. */
  teacher: string;
  /** Student architecture. */
  student: string;
  /** Student accuracy in percent. */
  studentAcc: PaperValue;
  /** Always false: the paper's table could not be read in full. */
  verified: false;
  /** Always "unverified" — show it next to the number. */
  status: "unverified";
}

/** Table B: DB3 with training data (ZSDB3KD paper, Table 1), unverified. */
export const TABLE_B: readonly TableBRow[] = [
  tb("standard KD", "kd", "mnist", "LeNet-5", "LeNet-5-half", 99.33),
  tb("DB3-MBD", "db3-mbd", "mnist", "LeNet-5", "LeNet-5-half", 99.52),
  tb("standard KD", "kd", "cifar10", "AlexNet", "AlexNet-half", 77.81),
  tb("DB3-MBD", "db3-mbd", "cifar10", "AlexNet", "AlexNet-half", 78.3),
];

function tb(
  method: TableBRow["method"],
  key: TableBRow["key"],
  dataset: TableBRow["dataset"],
  teacher: string,
  student: string,
  acc: number,
): TableBRow {
  return {
    method,
    key,
    dataset,
    teacher,
    student,
    studentAcc: v(acc),
    verified: false,
    status: "unverified",
  };
}

/** Qualitative claims of table B that hold without exact numbers. */
export const TABLE_B_CLAIMS: readonly string[] = [
  "ordering MBD > BD > SD",
  "all DB3 variants close to standard KD",
  "all DB3 variants above label-only CE training",
];

/** A teacher × student matrix of table C (values read off bar charts, ±1). */
export interface PaperMatrix {
  /** Which figure. */
  name: string;
  /** Dataset. */
  dataset: string;
  /** Teacher names (rows). */
  teachers: string[];
  /** Teacher accuracy per row. */
  teacherAcc: PaperValue[];
  /** Student names (columns). */
  students: string[];
  /** Student accuracy `[teacher][student]`. */
  studentAcc: PaperValue[][];
  /** Reading error of the chart, in points. */
  readError: number;
}

const n = (mean: number) => ({ mean });
const approx = (mean: number) => ({ mean, approx: true });

/** Table C, CIFAR-10: ResNet teacher depth → student depth. */
export const TABLE_C_CIFAR_DEPTH: PaperMatrix = {
  name: "CIFAR-10 ResNet depth",
  dataset: "cifar10",
  teachers: ["ResNet-152", "ResNet-34", "ResNet-18", "ResNet-4"],
  teacherAcc: [n(92.1), n(91.3), n(90.9), approx(80.5)],
  students: ["ResNet-152", "ResNet-101", "ResNet-50", "ResNet-34", "ResNet-18", "ResNet-4"],
  studentAcc: [
    [65.5, 65.5, 63.7, 60.5, 60.4, 21.0].map(n),
    [60.5, 60.7, 58.9, 62.6, 62.3, 21.8].map(n),
    [n(61.2), n(61.3), n(60.8), n(62.8), n(63.1), approx(23)],
    [42.7, 44.3, 43.8, 42.4, 43.8, 49.3].map(n),
  ],
  readError: 1,
};

/** Table C, MNIST: model type → model type. */
export const TABLE_C_MNIST_TYPE: PaperMatrix = {
  name: "MNIST model type",
  dataset: "mnist",
  teachers: ["MLP", "CNN", "ResNet", "ViT"],
  teacherAcc: [n(98.0), n(98.9), n(99.1), n(98.5)],
  students: ["MLP", "CNN", "ResNet", "ViT"],
  studentAcc: [
    [97.7, 90.4, 93.7, 17.1].map(n),
    [63.4, 98.5, 76.8, 11.9].map(n),
    [48.2, 20.8, 93.5, 11.0].map(n),
    [64.3, 41.9, 81.1, 96.8].map(n),
  ],
  readError: 1,
};

function norm(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, "");
}

const DATASET_ALIASES: Record<string, string> = { fashionmnist: "fmnist", cifar: "cifar10" };

function sameDataset(a: string, b: string): boolean {
  const x = DATASET_ALIASES[norm(a)] ?? norm(a);
  return b.split("/").some((part) => (DATASET_ALIASES[norm(part)] ?? norm(part)) === x);
}

/**
 * Find table-A rows by method key (or printed name), dataset and optionally student architecture,
 * e.g. `tableARows("cake", "mnist", "LeNet-5-half")`. Names compare case- and punctuation-insensitively.
 */
export function tableARows(method: string, dataset?: string, student?: string): TableARow[] {
  return TABLE_A.filter((r) =>
    (norm(r.key) === norm(method) || norm(r.method) === norm(method)) &&
    (dataset === undefined || sameDataset(dataset, r.dataset)) &&
    (student === undefined || r.student.split("/").some((s) => norm(s) === norm(student)))
  );
}

/** The single table-A row matching, or `undefined` if none or several match. */
export function tableARow(method: string, dataset: string, student?: string): TableARow | undefined {
  const rows = tableARows(method, dataset, student);
  return rows.length === 1 ? rows[0] : undefined;
}

/** Table-B rows for a dataset (all unverified). */
export function tableBRows(dataset: string): TableBRow[] {
  return TABLE_B.filter((r) => sameDataset(dataset, r.dataset));
}

/** One cell of a table-C matrix by teacher and student name (`"R34"` and `"ResNet-34"` both work). */
export function matrixCell(m: PaperMatrix, teacher: string, student: string): PaperValue | undefined {
  const find = (names: string[], q: string) =>
    names.findIndex((s) => norm(s) === norm(q) || norm(s).replace("resnet", "r") === norm(q));
  const i = find(m.teachers, teacher);
  const j = find(m.students, student);
  return i < 0 || j < 0 ? undefined : m.studentAcc[i][j];
}

/** Format a paper value as printed: `98.4 ± 0.18`, `≈23`. */
export function formatPaperValue(p: PaperValue | undefined, digits?: number): string {
  if (!p) return "";
  const m = digits === undefined ? String(p.mean) : p.mean.toFixed(digits);
  return `${p.approx ? "≈" : ""}${m}${p.std !== undefined ? ` ± ${p.std}` : ""}`;
}
