// docsprint's web page: upload documents, ask for keys, see every field boxed on its page.
// Plain DOM code served by the app itself (no CDN, no build step).
"use strict";

const COLORS = ["#d1495b", "#2a6fb0", "#2e933c", "#8f3fbf", "#e07a00", "#00798c", "#a05a2c", "#c2185b",
                "#455a64", "#6d8b00", "#5c6bc0", "#b8860b"];
const $ = (id) => document.getElementById(id);
let files = [];
let lastJSON = null;

function svgEl(name, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function setFiles(list) {
  files = Array.from(list);
  $("chosen").textContent = files.length ? files.map((f) => f.name).join(", ") : "";
  $("run").disabled = !files.length;
}

async function checkReady() {
  try {
    const r = await fetch("/readyz");
    const body = await r.json();
    $("status").textContent = r.ok ? "ready" : (body.error || "not ready");
    if (!r.ok) setTimeout(checkReady, 2000);
  } catch (e) {
    $("status").textContent = "service unreachable";
    setTimeout(checkReady, 2000);
  }
}

async function loadSchemas() {
  const r = await fetch("/v1/schemas");
  const body = await r.json();
  for (const [name, keys] of Object.entries(body.schemas)) {
    const opt = document.createElement("option");
    opt.value = name;
    opt.textContent = `${name} (${keys.join(", ")})`;
    if (name === "receipt") opt.selected = true;
    $("schema").appendChild(opt);
  }
}

function fieldValue(v) {
  if (v === null || v === undefined) return "null";
  return Array.isArray(v) ? v.join(" | ") : String(v);
}

function renderDoc(doc, low) {
  const box = document.createElement("div");
  box.className = "doc";
  const title = document.createElement("h2");
  title.textContent = doc.file;
  box.appendChild(title);
  if (doc.error) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = doc.error;
    box.appendChild(p);
    return box;
  }
  const times = document.createElement("p");
  times.className = "times muted";
  times.textContent = `OCR ${(doc.ocr_seconds * 1000).toFixed(0)} ms · model ${(doc.model_seconds * 1000).toFixed(0)} ms · ${doc.pages} page(s) · ${doc.mode}`;
  box.appendChild(times);
  const body = document.createElement("div");
  body.className = "doc-body";
  box.appendChild(body);

  const keys = Object.keys(doc.fields);
  const pages = document.createElement("div");
  pages.className = "pages";
  const svgs = (doc.page_images || []).map((pic, i) => {
    const wrap = document.createElement("div");
    wrap.className = "page";
    wrap.dataset.page = i;
    const img = document.createElement("img");
    img.src = pic.image;
    img.alt = `page ${i + 1}`;
    wrap.appendChild(img);
    const svg = svgEl("svg", { viewBox: `0 0 ${pic.width} ${pic.height}`, preserveAspectRatio: "none" });
    wrap.appendChild(svg);
    pages.appendChild(wrap);
    return svg;
  });
  body.appendChild(pages);

  const table = document.createElement("table");
  table.className = "fields";
  table.innerHTML = "<thead><tr><th>key</th><th>value</th><th>confidence</th></tr></thead>";
  const tbody = document.createElement("tbody");
  keys.forEach((key, k) => {
    const f = doc.fields[key];
    const color = COLORS[k % COLORS.length];
    const tr = document.createElement("tr");
    tr.className = "field";
    tr.dataset.key = key;
    if (f.value === null) tr.classList.add("null");
    if (f.value !== null && f.confidence < low) tr.classList.add("low");
    const name = document.createElement("td");
    name.innerHTML = `<span class="swatch" style="background:${color}"></span>`;
    name.appendChild(document.createTextNode(key));
    const value = document.createElement("td");
    value.className = "value";
    value.textContent = fieldValue(f.value);
    const conf = document.createElement("td");
    conf.className = "confidence";
    conf.textContent = f.confidence.toFixed(2);
    tr.append(name, value, conf);
    tbody.appendChild(tr);
    const svg = svgs[f.page || 0];
    if (!svg || f.value === null) return;
    f.boxes.forEach((b, j) => {
      const rect = svgEl("rect", { x: b[0], y: b[1], width: Math.max(b[2] - b[0], 1), height: Math.max(b[3] - b[1], 1),
                                   stroke: color, class: "field-box", "data-key": key });
      svg.appendChild(rect);
      if (j === 0) {
        const label = svgEl("text", { x: b[0], y: Math.max(b[1] - 3, 10), fill: color, class: "field-label" });
        label.textContent = key;
        svg.appendChild(label);
      }
    });
  });
  table.appendChild(tbody);
  body.appendChild(table);
  return box;
}

function render(results) {
  const low = parseFloat($("low").value) || 0;
  const out = $("results");
  out.innerHTML = "";
  results.forEach((doc) => out.appendChild(renderDoc(doc, low)));
  const clean = results.map((d) => { const c = { ...d }; delete c.page_images; return c; });
  lastJSON = JSON.stringify(clean, null, 2);
  const pre = document.createElement("pre");
  pre.className = "json";
  pre.id = "json";
  pre.textContent = lastJSON;
  const actions = document.createElement("div");
  actions.className = "actions";
  const copy = document.createElement("button");
  copy.textContent = "Copy JSON";
  copy.onclick = () => navigator.clipboard && navigator.clipboard.writeText(lastJSON);
  const download = document.createElement("a");
  download.id = "download";
  download.textContent = "Download JSON";
  download.download = "docsprint.json";
  download.href = URL.createObjectURL(new Blob([lastJSON], { type: "application/json" }));
  actions.append(copy, download);
  out.append(actions, pre);
}

async function run() {
  $("message").textContent = "";
  $("run").disabled = true;
  $("run").textContent = "Working…";
  const form = new FormData();
  files.forEach((f) => form.append("file", f, f.name));
  const keys = $("keys").value.trim();
  if (keys) form.append("keys", keys); else form.append("schema", $("schema").value);
  form.append("mode", $("mode").value);
  form.append("pages", "1");
  try {
    const r = await fetch("/v1/extract", { method: "POST", body: form });
    const body = await r.json();
    if (r.ok) render(body);
    else {
      $("message").textContent = `${r.status}: ${body.error}`;
      if (body.results) render(body.results);
    }
  } catch (e) {
    $("message").textContent = `request failed: ${e}`;
  } finally {
    $("run").disabled = !files.length;
    $("run").textContent = "Extract";
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); setFiles(e.dataTransfer.files); });
$("file").addEventListener("change", (e) => setFiles(e.target.files));
$("run").addEventListener("click", run);
loadSchemas();
checkReady();
