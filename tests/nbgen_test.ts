/**
 * Notebook templates (tools/nbgen.ts): the committed notebooks 10/11/12 and 30/31/32 are exactly what
 * their templates generate (a hand edit fails here: edit the template and run `deno task nbgen`), and
 * the dataset-specific words come from the settings and paper tables.
 */
import assert from "node:assert/strict";
import { db3Settings } from "../lib/experiments/db3.ts";
import { zsSettingsNote } from "../lib/experiments/zs_settings.ts";
import { tableARow } from "../lib/results/paper.ts";
import { repoRoot } from "../lib/util/paths.ts";
import { generateAll, generateNotebook, notebookFile } from "../tools/nbgen.ts";

Deno.test("nbgen: every committed family notebook equals its generated text", async () => {
  const all = await generateAll();
  assert.deepEqual([...all.keys()].sort(), [
    "notebooks/10_db3_mnist.ipynb",
    "notebooks/11_db3_fmnist.ipynb",
    "notebooks/12_db3_cifar10.ipynb",
    "notebooks/30_zsdb3kd_mnist.ipynb",
    "notebooks/31_zsdb3kd_fmnist.ipynb",
    "notebooks/32_zsdb3kd_cifar10.ipynb",
  ]);
  for (const [path, text] of all) {
    const committed = await Deno.readTextFile(`${repoRoot()}/${path}`);
    assert.ok(
      committed === text,
      `${path} was edited by hand: edit tools/nbgen/*.template.ipynb, run deno task nbgen`,
    );
    assert.ok(!text.includes("{{"), `${path} has an unfilled placeholder`);
    JSON.parse(text);
  }
});

Deno.test("nbgen: dataset words come from the settings and the paper tables", async () => {
  const fm = await generateNotebook("zsdb3kd", "fmnist");
  assert.ok(fm.includes(`${tableARow("zsdb3kd", "fmnist")!.studentAcc[0].mean}%`));
  assert.ok(fm.includes('runZeroShotNotebook(\\"31\\"'));
  const laptopNote = zsSettingsNote("laptop", "cifar10").split(" ").slice(0, 4).join(" ");
  assert.ok((await generateNotebook("zsdb3kd", "cifar10")).includes(laptopNote));
  const cifar = await generateNotebook("db3", "cifar10");
  assert.ok(cifar.includes("AlexNet → AlexNet-half"));
  assert.ok(cifar.includes(db3Settings("laptop", "cifar10").note.split(" ").slice(0, 3).join(" ")));
  assert.equal(notebookFile("db3", "fmnist"), "11_db3_fmnist.ipynb");
});

Deno.test("nbgen: the --check command passes on the committed tree", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${repoRoot()}/tools/nbgen.ts`, "--check"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});
