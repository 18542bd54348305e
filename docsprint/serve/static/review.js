// Review mode (docsprint serve --review DIR): the model's answers drawn on each page; a person
// accepts them, clicks words to set a value, or types one, and saves the document's labels.
"use strict";

const review = { list: null, index: 0, doc: null, fields: {}, active: null };
const R = (id) => document.getElementById(id);
const REVIEW_COLORS = ["#d1495b", "#2a6fb0", "#2e933c", "#8f3fbf", "#e07a00", "#00798c", "#a05a2c", "#c2185b"];

function svgNode(name, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

async function reviewInit() {
  const r = await fetch("/v1/review");
  if (!r.ok) return; // review mode is off
  review.list = await r.json();
  R("review").hidden = false;
  R("review-labels").textContent = review.list.labels;
  R("review-prev").onclick = () => reviewOpen(review.index - 1);
  R("review-next").onclick = () => reviewOpen(review.index + 1);
  R("review-save").onclick = reviewSave;
  const first = review.list.documents.findIndex((d) => !d.reviewed);
  await reviewOpen(first < 0 ? 0 : first);
}

function reviewPosition() {
  const docs = review.list.documents;
  const done = docs.filter((d) => d.reviewed).length;
  R("review-pos").textContent = `${review.index + 1} / ${docs.length} · ${done} reviewed`;
  R("review-prev").disabled = review.index === 0;
  R("review-next").disabled = review.index === docs.length - 1;
}

async function reviewOpen(i) {
  const docs = review.list.documents;
  if (i < 0 || i >= docs.length) return;
  review.index = i;
  reviewPosition();
  R("review-file").textContent = `${docs[i].file} (reading…)`;
  R("review-message").textContent = "";
  const r = await fetch(`/v1/review/${i}`);
  const body = await r.json();
  if (!r.ok) {
    R("review-message").textContent = `${r.status}: ${body.error}`;
    return;
  }
  review.doc = body;
  review.fields = {};
  for (const [key, f] of Object.entries(body.fields)) {
    review.fields[key] = { value: f.value, page: f.page, words: [...f.words], confidence: f.confidence, source: f.source };
  }
  review.active = Object.keys(review.fields)[0] || null;
  R("review-file").textContent = body.file + (body.reviewed ? " (saved labels)" : " (the model's answers)");
  reviewDraw();
}

function reviewColor(key) {
  return REVIEW_COLORS[Object.keys(review.fields).indexOf(key) % REVIEW_COLORS.length];
}

function reviewDraw() {
  const pages = R("review-pages");
  pages.innerHTML = "";
  review.doc.pages.forEach((pg, p) => {
    const wrap = document.createElement("div");
    wrap.className = "page";
    const img = document.createElement("img");
    img.src = pg.image;
    img.alt = `page ${p + 1}`;
    wrap.appendChild(img);
    const svg = svgNode("svg", { viewBox: `0 0 ${pg.width} ${pg.height}`, preserveAspectRatio: "none" });
    pg.words.forEach((w, j) => {
      const owner = Object.keys(review.fields).find((k) => review.fields[k].page === p && review.fields[k].words.includes(j));
      const attrs = { x: w[1], y: w[2], width: Math.max(w[3] - w[1], 1), height: Math.max(w[4] - w[2], 1),
                      class: owner ? "word picked" : "word", "data-page": p, "data-index": j, "data-text": w[0] };
      if (owner) { attrs.stroke = reviewColor(owner); attrs["data-key"] = owner; }
      const rect = svgNode("rect", attrs);
      rect.addEventListener("click", () => reviewClickWord(p, j));
      svg.appendChild(rect);
    });
    wrap.appendChild(svg);
    pages.appendChild(wrap);
  });
  const tbody = R("review-fields");
  tbody.innerHTML = "";
  for (const [key, f] of Object.entries(review.fields)) {
    const tr = document.createElement("tr");
    tr.className = "review-field" + (key === review.active ? " active" : "");
    tr.dataset.key = key;
    tr.onclick = () => { if (review.active !== key) { review.active = key; reviewDraw(); } };
    const name = document.createElement("td");
    name.innerHTML = `<span class="swatch" style="background:${reviewColor(key)}"></span>`;
    name.appendChild(document.createTextNode(key));
    const cell = document.createElement("td");
    const input = document.createElement("input");
    input.type = "text";
    input.className = "review-value";
    input.value = f.value === null ? "" : f.value;
    input.placeholder = "no value (null)";
    input.addEventListener("input", () => { // a typed value: not placed on words
      f.value = input.value.trim() === "" ? null : input.value;
      f.words = [];
      f.page = null;
      f.source = "typed";
      tr.querySelector(".source").textContent = "typed";
      document.querySelectorAll(`#review-pages rect.word[data-key="${CSS.escape(key)}"]`).forEach((r) => {
        r.setAttribute("class", "word"); r.removeAttribute("data-key"); r.removeAttribute("stroke");
      });
    });
    input.addEventListener("focus", () => { review.active = key; R("review-fields").querySelectorAll("tr").forEach(
      (row) => row.classList.toggle("active", row.dataset.key === key)); });
    cell.appendChild(input);
    const conf = document.createElement("td");
    conf.className = "muted";
    conf.textContent = f.confidence === null || f.confidence === undefined ? "" : f.confidence.toFixed(2);
    const source = document.createElement("td");
    source.className = "source muted";
    source.textContent = f.source;
    const clear = document.createElement("td");
    const btn = document.createElement("button");
    btn.className = "small review-null";
    btn.textContent = "null";
    btn.title = "this document has no value for this key";
    btn.onclick = (e) => { e.stopPropagation(); Object.assign(f, { value: null, words: [], page: null, source: "null" }); reviewDraw(); };
    clear.appendChild(btn);
    tr.append(name, cell, conf, source, clear);
    tbody.appendChild(tr);
  }
}

function reviewClickWord(p, j) {
  const key = review.active;
  if (!key) return;
  const f = review.fields[key];
  if (f.page !== p) { f.words = []; f.page = p; } // a value lies on one page
  const at = f.words.indexOf(j);
  if (at >= 0) f.words.splice(at, 1); else f.words.push(j);
  f.words.sort((a, b) => a - b);
  const words = review.doc.pages[p].words;
  f.value = f.words.length ? f.words.map((k) => words[k][0]).join(" ") : null;
  if (!f.words.length) f.page = null;
  f.source = "words";
  reviewDraw();
}

async function reviewSave() {
  const fields = {};
  for (const [key, f] of Object.entries(review.fields)) {
    fields[key] = { value: f.value, page: f.words.length ? f.page : null, words: f.words };
  }
  const r = await fetch(`/v1/review/${review.index}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ fields }),
  });
  const body = await r.json();
  if (!r.ok) {
    R("review-message").textContent = `${r.status}: ${body.error}`;
    return;
  }
  review.list.documents[review.index].reviewed = true;
  R("review-message").textContent = `saved ${body.saved} (${body.reviewed} documents labelled in ${body.labels})`;
  R("review-message").dataset.saved = body.saved;
  const next = review.list.documents.findIndex((d, k) => k > review.index && !d.reviewed);
  if (next >= 0) await reviewOpen(next); else reviewPosition();
}

reviewInit();
