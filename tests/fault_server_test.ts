/**
 * Fault injection for the label server: the real `tools/serve.ts` in its own process on a free
 * port of 127.0.0.1, fed hostile requests — oversized bodies (declared and streamed), bad
 * %-encoding, non-integer and ragged shapes, bad flags, wrong tokens. The server's memory is read
 * from `/proc/<pid>/status` (peak resident set, VmHWM), never from timing. Every server is stopped
 * by its pid at the end of its test.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { saveTeacherFolder } from "../lib/teachers/load.ts";

await tf.setBackend("cpu");

const SERVE = new URL("../tools/serve.ts", import.meta.url).pathname;

/** A fixed 4-pixel ([2, 2, 1]), 3-class linear teacher. */
function teacher(): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [tfl.layers.flatten({ inputShape: [2, 2, 1] }), tfl.layers.dense({ units: 3 })],
  });
  m.setWeights([tf.tensor2d([[1, 0, -1], [0, 1, -1], [1, -1, 0], [-1, 0, 1]]), tf.tensor1d([0, 0.1, 0.2])]);
  return m;
}

async function withTeacher<T>(f: (dir: string, teacherDir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "bkd-fault-server-" });
  try {
    await saveTeacherFolder(teacher(), `${dir}/teacher`);
    return await f(dir, `${dir}/teacher`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interface Served {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Run `tools/serve.ts args`: resolves with the server once it prints its URL, or with its exit
 * code and stderr if it exits first (a startup error).
 */
async function serve(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ served?: Served; code?: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pattern = /serving \S+ at (http:\/\/127\.0\.0\.1:\d+)/;
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) {
      const { code } = await child.status;
      return { code, stderr: await errText };
    }
    text += value;
  }
  const drained = (async () => {
    while (!(await reader.read()).done) { /* keep the pipe flowing */ }
  })();
  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      Deno.kill(child.pid, "SIGKILL");
    }
    await child.status;
    await drained;
    await errText;
  };
  return { served: { url: text.match(pattern)![1], pid: child.pid, stop }, stderr: "" };
}

/** `/proc/<pid>/status` field in bytes (VmRSS, VmHWM, ...). */
function procBytes(pid: number, field: string): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

async function post(
  url: string,
  body: string | Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = {},
) {
  const res = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
  return { status: res.status, text: await res.text() };
}

const KSERVE = "/v2/models/teacher/infer";
const TFS = "/v1/models/teacher:predict";
const GOOD = JSON.stringify({
  inputs: [{ name: "input", shape: [1, 2, 2, 1], datatype: "FP32", data: [0, 1, 0, 1] }],
});

/**
 * Send a raw HTTP/1.1 POST over TCP: headers, then `chunks()` as the body (chunked transfer
 * encoding with `chunked`, else raw bytes after a Content-Length header) until it ends or the
 * server answers or stops reading. Returns the status line (or "" if none came) and the bytes sent.
 */
async function rawPost(
  url: string,
  path: string,
  headers: string[],
  chunks: () => Iterable<Uint8Array>,
  chunked: boolean,
): Promise<{ statusLine: string; sent: number }> {
  const u = new URL(url);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  const enc = new TextEncoder();
  let sent = 0;
  const reply: Uint8Array[] = [];
  // `write` may take only part of a buffer: loop until all of it is written.
  const writeAll = async (b: Uint8Array) => {
    for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off));
  };
  // Read the answer concurrently: the server may answer (and close) before the body is done.
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        reply.push(buf.slice(0, n));
        if (new TextDecoder().decode(reply[0]).includes("\r\n")) break;
      }
    } catch { /* reset by the server: whatever arrived is in `reply` */ }
  })();
  try {
    await writeAll(
      enc.encode(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\n${headers.join("\r\n")}\r\n\r\n`),
    );
    for (const c of chunks()) {
      if (reply.length > 0) break; // answered: stop sending
      if (chunked) await writeAll(enc.encode(`${c.length.toString(16)}\r\n`));
      await writeAll(c);
      if (chunked) await writeAll(enc.encode("\r\n"));
      sent += c.length;
    }
    if (chunked && reply.length === 0) await writeAll(enc.encode("0\r\n\r\n"));
  } catch { /* the server closed the connection while we were sending */ }
  await reading;
  try {
    conn.close();
  } catch { /* already closed */ }
  const text = new TextDecoder().decode(reply.length ? reply[0] : new Uint8Array());
  return { statusLine: text.split("\r\n")[0], sent };
}

Deno.test("serve: oversized bodies are refused with 413 while reading; the server's peak RSS stays bounded", async () => {
  await withTeacher(async (_dir, teacherDir) => {
    const r = await serve(["--teacher", teacherDir, "--max-body-mb", "1"]);
    assert.ok(r.served, `server did not start: ${r.stderr}`);
    const s = r.served!;
    try {
      // Warm up with one good request so the baseline includes the answering path.
      assert.equal((await post(s.url + KSERVE, GOOD)).status, 200);
      const before = procBytes(s.pid, "VmHWM");

      // 200 MB of body, sent until the server answers: first with a declared Content-Length
      // (refused before reading), then chunked with no length (refused once 1 MB has been read).
      const piece = new TextEncoder().encode("0.5,".repeat(16384)); // 64 KiB
      const total = 200 * 1024 * 1024;
      const body = function* () {
        for (let i = 0; i < total / piece.length; i++) yield piece;
      };
      const declared = await rawPost(s.url, KSERVE, [`Content-Length: ${total}`], body, false);
      assert.match(declared.statusLine, /^HTTP\/1\.1 413/, `sent ${declared.sent} bytes`);
      const streamed = await rawPost(
        s.url,
        KSERVE,
        ["Transfer-Encoding: chunked", "Content-Type: application/json"],
        body,
        true,
      );
      assert.match(streamed.statusLine, /^HTTP\/1\.1 413/, `sent ${streamed.sent} bytes`);

      const grew = procBytes(s.pid, "VmHWM") - before;
      assert.ok(grew < 64 * 1024 * 1024, `peak RSS grew by ${(grew / 2 ** 20).toFixed(1)} MB`);
      // Still answering.
      assert.equal((await post(s.url + KSERVE, GOOD)).status, 200);
    } finally {
      await s.stop();
    }
  });
});

Deno.test("serve: bad %-encoding, non-integer shapes and ragged instances get 400, not 500", async () => {
  await withTeacher(async (_dir, teacherDir) => {
    const r = await serve(["--teacher", teacherDir]);
    assert.ok(r.served, `server did not start: ${r.stderr}`);
    const s = r.served!;
    try {
      const badPct = await post(`${s.url}/v2/models/%E0%A4%A/infer`, GOOD);
      assert.equal(badPct.status, 400, badPct.text);
      assert.match(badPct.text, /%-encoding/);

      // A fractional batch size whose data length still matches n × 4 (1.5 × 4 = 6 values).
      const frac = await post(
        s.url + KSERVE,
        JSON.stringify({
          inputs: [{ name: "input", shape: [1.5, 2, 2, 1], datatype: "FP32", data: [0, 1, 0, 1, 0, 1] }],
        }),
      );
      assert.equal(frac.status, 400, frac.text);
      assert.match(frac.text, /whole number/);

      // The same with the binary extension: 0.5 images of 4 floats = 8 bytes.
      const head = new TextEncoder().encode(JSON.stringify({
        inputs: [{
          name: "input",
          shape: [0.5, 2, 2, 1],
          datatype: "FP32",
          parameters: { binary_data_size: 8 },
        }],
      }));
      const body = new Uint8Array(head.length + 8);
      body.set(head);
      const bin = await post(s.url + KSERVE, body, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": String(head.length),
      });
      assert.equal(bin.status, 400, bin.text);

      // Ragged TF-Serving instances with the right number of values in total (4 = one image).
      const ragged = await post(s.url + TFS, JSON.stringify({ instances: [[[0], [1, 0]], [[1]]] }));
      assert.equal(ragged.status, 400, ragged.text);
      assert.match(ragged.text, /ragged/);
      const raggedTwo = await post(s.url + TFS, JSON.stringify({ instances: [[[0, 1, 0]], [[1]]] }));
      assert.equal(raggedTwo.status, 400, raggedTwo.text);

      // Well-formed instances still work, nested or flat.
      const ok = await post(
        s.url + TFS,
        JSON.stringify({ instances: [[[[0], [1]], [[0], [1]]], [1, 0, 1, 0]] }),
      );
      assert.equal(ok.status, 200, ok.text);
      assert.equal(JSON.parse(ok.text).predictions.length, 2);
    } finally {
      await s.stop();
    }
  });
});

Deno.test("serve: bad flag values stop the server at startup with a message naming the flag", async () => {
  await withTeacher(async (dir, teacherDir) => {
    const cases: [string[], RegExp][] = [
      [["--max-batch", "abc"], /--max-batch "abc"/],
      [["--max-batch", "0"], /--max-batch "0"/],
      [["--protocol", "grpc"], /--protocol grpc: expected one of both, kserve-v2, tf-serving/],
      [["--port", "http"], /--port "http"/],
      [["--max-body-mb", "-3"], /--max-body-mb "-3"/],
      [["--token-file", `${dir}/missing-token`], /--token-file .*missing-token: cannot read it/],
    ];
    for (const [args, message] of cases) {
      const r = await serve(["--teacher", teacherDir, ...args]);
      if (r.served) await r.served.stop();
      assert.ok(!r.served, `${args.join(" ")}: the server started`);
      assert.equal(r.code, 2, `${args.join(" ")}: exit code`);
      assert.match(r.stderr, message);
    }
    const both = await serve(["--teacher", teacherDir, "--auth", "Bearer x"], { BKD_TOKEN: "y" });
    if (both.served) await both.served.stop();
    assert.ok(!both.served && both.code === 2, "two token sources");
    assert.match(both.stderr, /BKD_TOKEN and --auth both set the token/);
  });
});

Deno.test("serve: the token comes from BKD_TOKEN or --token-file; a wrong or missing token gets 401", async () => {
  await withTeacher(async (dir, teacherDir) => {
    await Deno.writeTextFile(`${dir}/token`, "file-s3cret\n");
    const servers = [
      {
        how: "BKD_TOKEN",
        token: "env-s3cret",
        start: () => serve(["--teacher", teacherDir], { BKD_TOKEN: "env-s3cret" }),
      },
      {
        how: "--token-file",
        token: "file-s3cret",
        start: () => serve(["--teacher", teacherDir, "--token-file", `${dir}/token`]),
      },
    ];
    for (const { how, token, start } of servers) {
      const r = await start();
      assert.ok(r.served, `${how}: server did not start: ${r.stderr}`);
      const s = r.served!;
      try {
        assert.equal(
          (await post(s.url + KSERVE, GOOD, { authorization: `Bearer ${token}` })).status,
          200,
          how,
        );
        assert.equal(
          (await post(s.url + KSERVE, GOOD, { authorization: `Bearer ${token}x` })).status,
          401,
          how,
        );
        assert.equal((await post(s.url + KSERVE, GOOD, { authorization: "Bearer " })).status, 401, how);
        assert.equal((await post(s.url + KSERVE, GOOD)).status, 401, how);
        // The token is not on the command line, where `ps` would show it.
        const cmdline = await Deno.readTextFile(`/proc/${s.pid}/cmdline`);
        assert.ok(!cmdline.includes(token), `${how}: token visible in /proc/${s.pid}/cmdline`);
      } finally {
        await s.stop();
      }
    }
  });
});

Deno.test("serve: non-finite pixels get 400 naming the image; the metadata publishes the weight fingerprint", async () => {
  await withTeacher(async (dir, teacherDir) => {
    // A second teacher with other weights, served under the same model name.
    const other = teacher();
    other.setWeights([tf.tensor2d([[0, 1, -1], [1, 0, -1], [1, -1, 0], [-1, 0, 1]]), tf.tensor1d([0, 0, 0])]);
    await saveTeacherFolder(other, `${dir}/other`);
    const a = await serve(["--teacher", teacherDir]);
    const b = await serve(["--teacher", `${dir}/other`]);
    assert.ok(a.served && b.served, `servers did not start: ${a.stderr} ${b.stderr}`);
    try {
      // 1e39 is finite in JSON but Infinity as a float32 pixel: the same rule as the local oracles.
      const inf = await post(
        a.served!.url + KSERVE,
        JSON.stringify({
          inputs: [{
            name: "input",
            shape: [2, 2, 2, 1],
            datatype: "FP32",
            data: [0, 1, 0, 1, 0, 1e39, 0, 1],
          }],
        }),
      );
      assert.equal(inf.status, 400, inf.text);
      assert.match(inf.text, /image 1 of the request has a non-finite pixel/);
      assert.equal((await post(a.served!.url + KSERVE, GOOD)).status, 200);

      const get = async (url: string) => await (await fetch(`${url}/v2/models/teacher`)).json();
      const [ma, mb] = [await get(a.served!.url), await get(b.served!.url)];
      assert.match(ma.fingerprint, /^[0-9a-f]{64}$/);
      assert.notEqual(ma.fingerprint, mb.fingerprint, "two teachers under one name must differ");
      const again = await get(a.served!.url);
      assert.equal(again.fingerprint, ma.fingerprint);
    } finally {
      await a.served?.stop();
      await b.served?.stop();
    }
  });
});
