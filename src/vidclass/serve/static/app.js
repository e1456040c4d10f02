// vidclass web page: upload a video as a job, follow its progress, then show the result
// over the playing video. Plain browser JavaScript, no build step, no network beyond this
// server. `window.vidclass.render(result, task)` draws any result (used by the tests).
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#2b6cb0", "#c05621", "#2f855a", "#b83280", "#6b46c1", "#b7791f",
  "#00838f", "#9b2c2c", "#4a5568", "#718096"];

const state = { file: null, url: null, result: null, task: "predict", model: null };

// ---------------------------------------------------------------- model description

async function loadModel() {
  try {
    const res = await fetch("/v1/model");
    const model = await res.json();
    state.model = model;
    $("model-info").textContent =
      `${model.model}: ${model.num_classes} classes, ${model.input.frames} frames of ` +
      `${model.input.size.join("×")} at ${+model.input.sample_fps.toFixed(2)} fps; ` +
      `uploads up to ${Math.round(model.max_upload_mb)} MB`;
    if (model.video_extensions) {  // GIF, MPEG-TS, ...: what the server takes as a video
      $("file").accept = ["video/*", ...model.video_extensions].join(",");
    }
    for (const opt of $("task").options) {
      const ok = model.tasks[opt.value];
      opt.disabled = !ok;
      if (!ok) opt.textContent += " — not available for this model";
    }
  } catch (err) {
    $("model-info").textContent = "could not read /v1/model: " + err;
  }
}

// ---------------------------------------------------------------- choosing a file

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("run").disabled = false;
  $("status").textContent = `${file.name} (${bytes(file.size)}) ready`;
  const limit = state.model ? state.model.max_upload_mb * 1e6 : Infinity;
  if (file.size > limit) {
    showError(`${file.name} is larger than this server's ${Math.round(limit / 1e6)} MB ` +
      "limit; choose a shorter video or restart the server with a larger --max-upload-mb");
  } else {
    showError("");
  }
}

function setupInput() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => chooseFile(e.dataTransfer.files[0]));
  $("options").addEventListener("submit", (e) => { e.preventDefault(); start(); });
}

function bytes(n) {
  return n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// ---------------------------------------------------------------- upload + job polling

function upload(form) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      $("upload-progress").value = e.loaded / e.total;
      $("upload-text").textContent = `${bytes(e.loaded)} / ${bytes(e.total)}`;
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 202) resolve(body);
      else {
        const retry = xhr.getResponseHeader("Retry-After");
        reject(new Error(`${xhr.status}: ${body.detail || xhr.statusText}` +
          (retry ? ` (retry in ${retry} s)` : "")));
      }
    };
    xhr.onerror = () => reject(new Error("the upload failed: the server is unreachable"));
    xhr.send(form);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow(job) {
  for (;;) {
    const res = await fetch(job.url);
    const body = await res.json();
    if (!res.ok) throw new Error(`${res.status}: ${body.detail}`);
    $("job-progress").value = body.progress;
    $("job-text").textContent = `${body.status} ${Math.round(100 * body.progress)} %`;
    if (body.status === "done") return body;
    if (body.status === "failed") throw new Error(`${body.error_status}: ${body.error}`);
    await sleep(300);
  }
}

async function start() {
  if (!state.file) return;
  showError("");
  $("run").disabled = true;
  $("upload-progress").value = 0;
  $("job-progress").value = 0;
  $("job-text").textContent = "";
  const form = new FormData();
  const task = $("task").value;
  form.append("task", task);
  if (task === "predict") {
    for (const name of ["window", "stride", "smooth", "top_k"]) {
      const v = $("options").elements[name].value;
      if (v !== "") form.append(name, v);
    }
  }
  form.append("video", state.file, state.file.name);
  try {
    $("status").textContent = "uploading…";
    const job = await upload(form);
    $("status").textContent = "processing…";
    const done = await follow(job);
    $("status").textContent = `done in ${done.elapsed_s.toFixed(2)} s`;
    showVideo(state.file);
    render(done.result, task);
  } catch (err) {
    $("status").textContent = "";
    showError(err.message);
  } finally {
    $("run").disabled = false;
  }
}

// ---------------------------------------------------------------- rendering a result

function showVideo(file) {
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  const video = $("video");
  video.src = state.url;
  $("playback-note").hidden = true;
  $("preview-note").hidden = true;
  video.dataset.preview = "0";
  // A format the browser cannot play (AVI, MKV...): ask the server for an H.264 preview.
  video.onerror = () => {
    if (video.dataset.preview !== "0") { $("playback-note").hidden = false; return; }
    video.dataset.preview = "1";
    playPreview(file).catch(() => { $("playback-note").hidden = false; });
  };
}

async function playPreview(file) {
  const form = new FormData();
  form.append("video", file, file.name);
  const res = await fetch("/v1/preview", { method: "POST", body: form });
  if (!res.ok) throw new Error(`preview: ${res.status}`);
  const blob = await res.blob();
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(blob);
  $("video").src = state.url;
  $("preview-note").hidden = false;
}

function render(result, task) {
  state.result = result;
  state.task = task || result.task || "predict";
  $("result").hidden = false;
  const segs = allSegments(result);
  const label = result.label || (segs.length ? topSegment(segs).label : "");
  $("result-label").textContent = label;
  $("result-score").textContent = result.score !== undefined
    ? `${(100 * result.score).toFixed(1)} %` : "";
  $("json").textContent = JSON.stringify(result, null, 2);
  renderTopK(result.top_k || []);
  drawTimeline();
  drawSegments();
  updateOverlay();
}

function topSegment(segments) {
  return segments.reduce((a, b) => (b.score > a.score ? b : a));
}

function renderTopK(rows) {
  const body = $("topk").querySelector("tbody");
  body.replaceChildren();
  rows.forEach((row, i) => {
    const tr = document.createElement("tr");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.round(150 * row.score)}px`;
    for (const text of [String(i + 1), row.label, `${(100 * row.score).toFixed(1)} %`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.appendChild(bar);
    tr.appendChild(td);
    body.appendChild(tr);
  });
}

function duration(result) {
  const video = $("video");
  if (result.duration_s) return result.duration_s;
  if (video.duration && isFinite(video.duration)) return video.duration;
  const ends = (result.timeline || []).map((u) => u.t_end)
    .concat((result.segments || []).map((s) => s.t_end));
  return Math.max(1, ...ends);
}

function sizeCanvas(canvas) {
  const width = canvas.clientWidth || 800;
  if (canvas.width !== width) canvas.width = width;
  return canvas.getContext("2d");
}

// The timeline: one line per top class (window probabilities at window centres), a
// playhead at the video's time; a click seeks the video there.
function drawTimeline() {
  const canvas = $("timeline");
  const result = state.result;
  const timeline = (result && result.timeline) || [];
  canvas.dataset.units = String(timeline.length);
  const ctx = sizeCanvas(canvas);
  const w = canvas.width, h = canvas.height, pad = 24;
  ctx.clearRect(0, 0, w, h);
  $("legend").replaceChildren();
  if (!timeline.length) return;
  const dur = duration(result);
  const classes = result.classes || [];
  const shown = (result.top_k || []).slice(0, 5).map((r) => classes.indexOf(r.label))
    .filter((k) => k >= 0);
  // The y axis ends at a round value above the highest probability shown, so the lines of
  // an unsure model (all near 1/K) are still told apart.
  const peak = Math.max(0.01, ...shown.flatMap((k) => timeline.map((u) => u.probs[k])));
  const top = [0.05, 0.1, 0.2, 0.5, 1].find((v) => v >= peak) || 1;
  const x = (t) => pad + (w - 2 * pad) * (t / dur);
  const y = (p) => h - pad - (h - 2 * pad) * (p / top);
  ctx.strokeStyle = "#ccd"; ctx.fillStyle = "#667"; ctx.font = "11px sans-serif";
  ctx.beginPath();
  for (const p of [0, top / 2, top]) { ctx.moveTo(pad, y(p)); ctx.lineTo(w - pad, y(p)); }
  ctx.stroke();
  ctx.fillText(String(top), 2, y(top) + 4); ctx.fillText("0", 6, y(0) + 4);
  ctx.fillText(`${dur.toFixed(1)} s`, w - pad - 30, h - 6);
  shown.forEach((k, i) => {
    ctx.strokeStyle = PALETTE[i % PALETTE.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    timeline.forEach((u, j) => {
      const px = x((u.t_start + u.t_end) / 2), py = y(u.probs[k]);
      if (j === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = PALETTE[i % PALETTE.length];
    item.append(swatch, classes[k]);
    $("legend").appendChild(item);
  });
  const t = $("video").currentTime || 0;
  ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(x(t), pad / 2); ctx.lineTo(x(t), h - pad); ctx.stroke();
}

// Localization / detection segments as coloured bars on one lane under the chart.
function allSegments(result) {
  const segs = (result.segments || []).map((s) => ({ ...s }));
  for (const track of result.tracks || []) {
    for (const s of track.segments || []) segs.push({ ...s, track_id: track.track_id });
  }
  return segs;
}

function drawSegments() {
  const canvas = $("segments");
  const result = state.result;
  const segs = result ? allSegments(result) : [];
  canvas.hidden = !segs.length;
  canvas.dataset.segments = String(segs.length);
  if (!segs.length) return;
  const ctx = sizeCanvas(canvas);
  const w = canvas.width, h = canvas.height, pad = 24;
  const dur = duration(result);
  const labels = [...new Set(segs.map((s) => s.label))];
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  for (const s of segs) {
    const x0 = pad + (w - 2 * pad) * (s.t_start / dur);
    const x1 = pad + (w - 2 * pad) * (s.t_end / dur);
    ctx.fillStyle = PALETTE[labels.indexOf(s.label) % PALETTE.length];
    ctx.fillRect(x0, 6, Math.max(2, x1 - x0), h - 12);
    ctx.fillStyle = "#fff";
    ctx.fillText(s.label, x0 + 3, h / 2 + 4, Math.max(0, x1 - x0 - 6));
  }
}

// What is true at time t: the smoothed label of the nearest window (nothing before the
// first window starts), or the segment covering t.
function labelAt(result, t) {
  const timeline = result.timeline || [];
  if (timeline.length) {
    if (t < timeline[0].t_start) return null;
    let best = timeline[0], dist = Infinity;
    for (const u of timeline) {
      const d = Math.abs((u.t_start + u.t_end) / 2 - t);
      if (d < dist) { dist = d; best = u; }
    }
    return { label: best.smoothed_label, score: best.smoothed_score };
  }
  const seg = (result.segments || []).find((s) => s.t_start <= t && t <= s.t_end);
  return seg ? { label: seg.label, score: seg.score } : null;
}

function boxesAt(result, t) {
  const out = [];
  for (const track of result.tracks || []) {
    let best = null, dist = Infinity;
    for (const b of track.boxes || []) {
      const d = Math.abs(b[0] - t);
      if (d < dist) { dist = d; best = b; }
    }
    if (!best || dist > 0.5) continue;
    const seg = (track.segments || []).find((s) => s.t_start <= t && t <= s.t_end);
    out.push({ id: track.track_id, box: best.slice(1), label: seg ? seg.label : "" });
  }
  return out;
}

function updateOverlay() {
  const result = state.result;
  if (!result) return;
  const video = $("video");
  const t = video.currentTime || 0;
  const now = labelAt(result, t);
  $("overlay-label").textContent = now
    ? `${now.label} ${(100 * now.score).toFixed(0)} %` : "";
  // Boxes are in the video's pixels; scale them to the displayed size.
  const canvas = $("boxes");
  canvas.width = video.clientWidth; canvas.height = video.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // a preview is smaller than the video the boxes were found in
  const preview = video.dataset.preview === "1" && result.width && result.height;
  const vw = (preview ? result.width : video.videoWidth) || result.width || canvas.width;
  const vh = (preview ? result.height : video.videoHeight) || result.height || canvas.height;
  const boxes = boxesAt(result, t);
  canvas.dataset.boxes = String(boxes.length);
  ctx.lineWidth = 2; ctx.font = "13px sans-serif";
  for (const b of boxes) {
    const [x1, y1, x2, y2] = b.box;
    const sx = canvas.width / vw, sy = canvas.height / vh;
    ctx.strokeStyle = PALETTE[b.id % PALETTE.length];
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(`#${b.id} ${b.label}`, x1 * sx + 2, Math.max(12, y1 * sy - 3));
  }
  drawTimeline();
}

function setupPlayback() {
  const video = $("video");
  video.addEventListener("timeupdate", updateOverlay);
  video.addEventListener("seeked", updateOverlay);
  video.addEventListener("loadedmetadata", updateOverlay);
  const tick = () => { if (!video.paused) updateOverlay(); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  for (const id of ["timeline", "segments"]) {
    $(id).addEventListener("click", (e) => {
      if (!state.result) return;
      const rect = e.target.getBoundingClientRect();
      const frac = (e.clientX - rect.left - 24) / (rect.width - 48);
      video.currentTime = Math.max(0, Math.min(1, frac)) * duration(state.result);
      updateOverlay();
    });
  }
  window.addEventListener("resize", () => { drawTimeline(); drawSegments(); });
}

setupInput();
setupPlayback();
loadModel();
window.vidclass = { render, labelAt, boxesAt };
