/**
 * Registry of experiment families the runner can execute, by `RunPlan.family`.
 *
 * @module
 */
import { CAKE_FAMILY } from "./cake_units.ts";
import { DB3_LABEL_FAMILY } from "./db3_label_units.ts";
import { DB3_FAMILY } from "./db3_units.ts";
import { DB3_ABLATIONS_FAMILY } from "./db3abl_units.ts";
import { BYOT_FAMILY } from "./byot_units.ts";
import { QUICKSTART_FAMILY } from "./quickstart_units.ts";
import type { Family } from "../runner/family.ts";
import { ZSDB3KD_FAMILY } from "./zs_student_units.ts";

/** Families by name. */
export const FAMILIES: Record<string, Family> = {
  [DB3_LABEL_FAMILY.name]: DB3_LABEL_FAMILY,
  [DB3_FAMILY.name]: DB3_FAMILY,
  [ZSDB3KD_FAMILY.name]: ZSDB3KD_FAMILY,
  [CAKE_FAMILY.name]: CAKE_FAMILY,
  [DB3_ABLATIONS_FAMILY.name]: DB3_ABLATIONS_FAMILY,
  [BYOT_FAMILY.name]: BYOT_FAMILY,
  [QUICKSTART_FAMILY.name]: QUICKSTART_FAMILY,
};

/** The family called `name`, or an error listing the known ones. */
export function familyOf(name: string): Family {
  const f = FAMILIES[name];
  if (!f) throw new Error(`unknown experiment family "${name}"; known: ${Object.keys(FAMILIES).join(", ")}`);
  return f;
}
