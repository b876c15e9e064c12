// The "Try it" page (book/try_it.md): chapter 6's int8 ONNX models, run in the reader's browser.
//
// Everything comes from the folder this module sits in, which the book's build writes
// (helpers.try_it): manifest.json (the models, their files, F1 and teacher, from the results
// file), models/<name>/ (model.int8.onnx, tokenizer.json, predictor.json: the files
// helpers.predict.load_predictor serves), ONNX Runtime Web and tokenizers.js (vendored from npm).
//
// A text is encoded as helpers.predict.Predictor.encode does (special tokens added, a BERT cut
// inside and keeping its final [SEP], an empty text of a token model becomes one [PAD]), run at
// batch 1 with one thread (as chapter 6 times its models), and the toxic class's probability is
// the softmax of the two logits. window.tryIt exposes the same functions to tests.

const BASE = new URL(".", import.meta.url);

/** Load one model: its ONNX Runtime session and tokenizer (the folder's own tokenizer.json). */
async function loadModel(ort, Tokenizer, entry) {
  const folder = new URL(entry.folder + "/", BASE);
  const tokenizerJson = await (await fetch(new URL("tokenizer.json", folder))).json();
  // tokenizers.js takes a tokenizer_config.json beside tokenizer.json; a WordLevel model (the
  // word BiLSTM) needs its unknown token from it, nothing else is read.
  const tokenizer = new Tokenizer(tokenizerJson, { unk_token: tokenizerJson.model.unk_token });
  const session = await ort.InferenceSession.create(
    new URL("model.int8.onnx", folder).href, { executionProviders: ["wasm"] });
  return { ...entry, tokenizer, session };
}

/** Token ids of ``text``, cut as helpers.predict.Predictor.encode cuts them. */
function encode(model, text) {
  const ids = model.tokenizer.encode(text, { add_special_tokens: true }).ids.map(Number);
  const max = model.max_length;
  if (model.kind === "bert") {
    return ids.length <= max ? ids : [...ids.slice(0, max - 1), ids[ids.length - 1]];
  }
  const cut = ids.slice(0, max);
  return cut.length ? cut : [model.pad_id];
}

/** Toxic-class probability of one text, and the milliseconds it took from string to number. */
async function predict(ort, model, text) {
  const start = performance.now();
  const ids = encode(model, text);
  const shape = [1, ids.length];
  const feeds = {
    input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), shape),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), shape),
  };
  const logits = (await model.session.run(feeds)).logits.data;
  // softmax over the two logits, column 1 (helpers.predict.softmax_toxic)
  const top = Math.max(logits[0], logits[1]);
  const [e0, e1] = [Math.exp(logits[0] - top), Math.exp(logits[1] - top)];
  return { proba: e1 / (e0 + e1), ms: performance.now() - start, ids };
}

const megabytes = (bytes) => (bytes / 1e6).toFixed(1) + " MB";
const score = (value) => (value === null || value === undefined ? "–" : value.toFixed(3));

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, value));
  node.append(...children);
  return node;
}

function teacherNote(manifest) {
  if (!manifest.teacher) return "The students were trained without a recorded teacher.";
  const note = `The students were distilled from the teacher ${manifest.teacher}`;
  return manifest.standin
    ? `${note}, an offline STAND-IN with random weights: its probabilities, and the students', ` +
        "mean nothing (this build could not download the real rubert-tiny)."
    : `${note}.`;
}

function resultsTable(models) {
  const head = el("tr", {}, ...["model", "why it is here", "toxic probability",
    "in-browser latency", "download", "test F1", "validation F1"].map((h) => el("th", {}, h)));
  const rows = models.map((m) => el("tr", { "data-model": m.model },
    el("td", {}, m.model + (m.standin ? " †" : "")), el("td", {}, m.roles.join(", ")),
    el("td", { class: "try-it-proba" }, "–"), el("td", { class: "try-it-ms" }, "–"),
    el("td", {}, megabytes(Object.values(m.files).reduce((a, b) => a + b, 0))),
    el("td", {}, score(m.f1)), el("td", {}, score(m.valid_f1))));
  return el("table", { class: "table try-it-table" }, el("thead", {}, head),
    el("tbody", {}, ...rows));
}

function downloadNote(manifest) {
  const files = [...Object.entries(manifest.runtime_files)];
  manifest.models.forEach((m) => Object.entries(m.files).forEach(
    ([name, bytes]) => files.push([`${m.folder}/${name}`, bytes])));
  return el("details", {},
    el("summary", {}, `This page downloads ${megabytes(manifest.first_bytes)} on opening, ` +
      `${megabytes(manifest.total_bytes)} with every model`),
    el("ul", {}, ...files.map(([name, bytes]) => el("li", {}, `${name}: ${megabytes(bytes)}`))));
}

async function main() {
  const root = document.getElementById("try-it");
  const status = document.getElementById("try-it-status");
  const manifest = await (await fetch(new URL("manifest.json", BASE))).json();
  if (manifest.missing) {
    status.textContent = manifest.missing;
    return null;
  }
  const ort = await import(new URL("ort.wasm.min.mjs", BASE).href);
  const { Tokenizer } = await import(new URL("tokenizers.min.mjs", BASE).href);
  ort.env.wasm.wasmPaths = BASE.href;
  ort.env.wasm.numThreads = 1; // one thread, as chapter 6 times every model
  status.textContent = "Loading the models…";
  const loaded = new Map(); // model name -> loaded model, in the manifest's order once all are
  const load = async (entry) => {
    const model = await loadModel(ort, Tokenizer, entry);
    await predict(ort, model, "прогрев"); // warm-up, not timed on the page
    loaded.set(entry.model, model);
  };
  await Promise.all(manifest.models.filter((m) => !m.on_demand).map(load));

  const box = el("textarea", { id: "try-it-text", rows: "3", style: "width:100%",
    placeholder: "Напишите комментарий по-русски (type a Russian comment)" });
  const button = el("button", { id: "try-it-run", class: "btn btn-primary" }, "Classify");
  const table = resultsTable(manifest.models);
  const rowOf = (name) => table.querySelector(`tr[data-model="${CSS.escape(name)}"]`);
  const run = async () => {
    const text = box.value;
    for (const entry of manifest.models) {
      const model = loaded.get(entry.model);
      if (!model) continue;
      const { proba, ms } = await predict(ort, model, text);
      const cell = rowOf(entry.model).querySelector(".try-it-proba");
      cell.dataset.proba = String(proba);
      cell.textContent = proba.toFixed(3);
      rowOf(entry.model).querySelector(".try-it-ms").textContent = `${ms.toFixed(1)} ms`;
    }
    root.dataset.classified = text;
  };
  // A large model (the teacher) is downloaded only when the reader asks for it.
  for (const entry of manifest.models.filter((m) => m.on_demand)) {
    const bytes = Object.values(entry.files).reduce((a, b) => a + b, 0);
    const fetchIt = el("button", { class: "btn btn-outline-secondary btn-sm try-it-load" },
      `load it (${megabytes(bytes)})`);
    fetchIt.addEventListener("click", async () => {
      fetchIt.disabled = true;
      fetchIt.textContent = "loading…";
      await load(entry);
      rowOf(entry.model).dataset.loaded = "1";
      fetchIt.remove();
      await run();
    });
    rowOf(entry.model).querySelector(".try-it-proba").replaceChildren(fetchIt);
  }
  button.addEventListener("click", run);
  document.querySelectorAll("#try-it-examples button").forEach((example) =>
    example.addEventListener("click", () => { box.value = example.dataset.text; run(); }));
  const examples = document.getElementById("try-it-examples");
  examples.hidden = false;
  status.replaceChildren(el("p", {}, teacherNote(manifest) + (manifest.small
    ? " This build ran in small-data mode: the models saw a few hundred comments." : "")));
  root.replaceChildren(box, button, examples, table, el("p", {},
    "Latency: milliseconds from the string to the probability (tokenizer and network), batch " +
    "1, one thread, in this browser. Test and validation F1: the model as its chapter recorded " +
    "it (before int8; chapter 6 shows what int8 changes). † depends on a stand-in teacher."),
  downloadNote(manifest));

  /** Probabilities, token ids and milliseconds of every loaded model for ``texts``, one text at
   * a time as the page scores them (for tests). */
  async function scoreTexts(texts) {
    const out = {};
    for (const [name, model] of loaded) {
      out[name] = { proba: [], ids: [], ms: [] };
      for (const text of texts) {
        const result = await predict(ort, model, text);
        out[name].proba.push(result.proba);
        out[name].ids.push(result.ids);
        out[name].ms.push(result.ms);
      }
    }
    return out;
  }
  return { manifest, loaded: () => [...loaded.keys()], scoreTexts };
}

// Resolves to the page's functions, or to null when the build has no models to show.
window.tryIt = main().catch((error) => {
  document.getElementById("try-it-status").textContent =
    `The models could not be loaded in this browser: ${error.message}`;
  return null;
});
