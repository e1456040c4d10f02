// The labelling page of `vidclass label`: one clip at a time, one key per class.
// Every action goes to the server, which writes the CSV before it answers; actions run one
// after another (a queue of promises), so keys pressed quickly apply in order.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { st: null, current: null, clip: null, chain: Promise.resolve(), classesShown: "" };

// Every write is JSON (the server refuses any other: no other site's page can send it).
async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: method === "GET" ? {} : { "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = {};
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) throw new Error(`${res.status}: ${data.detail || res.statusText}`);
  return data;
}

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

// Run `fn` after every action before it; errors are shown, never lost.
function act(fn) {
  document.body.dataset.busy = "1";
  state.chain = state.chain.then(fn).then(() => showError(""), (err) => showError(err.message))
    .finally(() => { document.body.dataset.busy = "0"; });
  return state.chain;
}

// ---------------------------------------------------------------- state and one clip

function apply(st) {
  state.st = st;
  const word = st.mode === "review" ? "reviewed" : "labelled";
  $("progress").textContent = `${st.done} of ${st.total} ${word}`;
  const sc = st.scoring;
  $("scoring").textContent = sc.model
    ? (sc.running ? `scoring with ${sc.model}: ${sc.scored} of ${sc.clips}` : `scored by ${sc.model}`)
    : "";
  $("rescore").hidden = !sc.model;
  $("keep").hidden = st.mode !== "review";
  $("csv-name").textContent = st.csv;
  $("undo").disabled = !st.can_undo;
  const names = st.classes.map((c) => c.name).join("\n");
  if (names !== state.classesShown) {
    state.classesShown = names;
    const box = $("classes");
    box.replaceChildren();
    for (const c of st.classes) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.label = c.name;
      if (c.key) {
        const k = document.createElement("kbd");
        k.textContent = c.key;
        b.append(k, " ");
      }
      b.append(c.name);
      b.addEventListener("click", () => act(() => label(c.name)));
      box.appendChild(b);
    }
  }
}

async function refresh() {
  apply(await api("GET", "/v1/state"));
}

async function show(id) {
  state.current = id;
  document.body.dataset.clip = id || "";
  if (!id) {
    state.clip = null;
    $("clip-name").textContent = state.st && state.st.total ? "all clips done" : "no clips yet";
    $("position").textContent = "";
    $("video").removeAttribute("src");
    renderClip(null);
    return;
  }
  const clip = await api("GET", `/v1/clips/${id}`);
  state.clip = clip;
  $("clip-name").textContent = clip.name;
  const total = state.st ? state.st.total : 0;
  $("position").textContent = clip.position ? `clip ${clip.position} of ${total}` : "";
  renderClip(clip);
  playClip(clip);
}

function renderClip(clip) {
  const label = clip && clip.label;
  $("current-label").textContent = label || "none";
  $("current-label").className = label ? "" : "none";
  const sug = clip && clip.suggestion;
  $("suggestion").textContent = sug ? `${sug.label} ${(100 * sug.score).toFixed(0)} %`
    : (clip && clip.score_error ? `cannot score: ${clip.score_error}` : "none");
  $("accept").disabled = !sug;
  const body = $("top3").querySelector("tbody");
  body.replaceChildren();
  for (const row of (sug && sug.top) || []) {
    const tr = document.createElement("tr");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.round(120 * row.score)}px`;
    for (const text of [row.label, `${(100 * row.score).toFixed(1)} %`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.appendChild(bar);
    tr.appendChild(td);
    body.appendChild(tr);
  }
  for (const b of $("classes").querySelectorAll("button")) {
    b.classList.toggle("current", !!label && b.dataset.label === label);
    b.classList.toggle("suggested", !!sug && b.dataset.label === sug.label);
  }
}

function note(text) {
  $("video-note").textContent = text || "";
  $("video-note").hidden = !text;
}

// The server sends the file when browsers play it, else a small H.264 preview (and says
// when the preview is shorter than the clip); should the file still fail here (a codec
// this browser lacks), the preview is asked for. A preview can fail because the server is
// busy making others (503): it is asked for again a few times before giving up.
function playClip(clip) {
  const video = $("video");
  const previewing = !clip.plays_as_is;
  note(previewing ? clip.preview_note : "");
  video.dataset.preview = previewing ? "1" : "0";
  let tries = 0;
  video.onerror = () => {
    if (state.current !== clip.id) return;
    if (video.dataset.preview === "1" && tries >= 3) {
      note("this clip cannot be played (see the server's log)");
      return;
    }
    tries += video.dataset.preview === "1" ? 1 : 0;
    video.dataset.preview = "1";
    note(clip.preview_note);
    setTimeout(() => { if (state.current === clip.id) video.src = clip.preview_url; },
      tries ? 2000 : 0);
  };
  video.src = clip.video_url;
}

// ---------------------------------------------------------------- actions

async function label(name) {
  if (!state.current) return;
  const st = await api("POST", `/v1/clips/${state.current}/label`, { label: name });
  apply(st);
  await show(st.next);
}

async function accept() {
  const sug = state.clip && state.clip.suggestion;
  if (!sug) throw new Error("no suggestion for this clip (no model, or not scored yet)");
  await label(sug.label);
}

async function keep() {
  if (!state.clip || !state.clip.label) return;
  await label(state.clip.label);
}

async function skip() {
  if (!state.current) return;
  const st = await api("POST", `/v1/clips/${state.current}/skip`);
  apply(st);
  await show(st.next);
}

async function undo() {
  const st = await api("POST", "/v1/undo");
  apply(st);
  await show(st.undone || st.next);
}

async function move(step) {
  await refresh();
  const order = state.st.order.map((c) => c.id);
  if (!order.length) return;
  const i = order.indexOf(state.current);
  const j = i < 0 ? 0 : Math.max(0, Math.min(order.length - 1, i + step));
  await show(order[j]);
}

async function rescore() {
  apply(await api("POST", "/v1/rescore"));
  poll();
}

// While the model scores, the progress and the current clip's suggestion follow it.
let polling = false;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    while (state.st && state.st.scoring.running) {
      await new Promise((r) => setTimeout(r, 1500));
      await refresh();
      if (state.clip && !state.clip.suggestion) {
        const clip = await api("GET", `/v1/clips/${state.clip.id}`);
        if (clip.id === state.current) { state.clip = clip; renderClip(clip); }
      }
      if (!state.current && state.st.next) await show(state.st.next);
    }
  } catch (err) {
    showError(err.message);
  } finally {
    polling = false;
  }
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || !state.st) return;
  if (e.target && ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName)) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const cls = state.st.classes.find((c) => c.key === key);
  let fn = null;
  if (cls) fn = () => label(cls.name);
  else if (key === "Enter") fn = accept;
  else if (key === "s") fn = skip;
  else if (key === "u") fn = undo;
  else if (key === "k" && state.st.mode === "review") fn = keep;
  else if (key === "ArrowRight" || key === "ArrowDown") fn = () => move(1);
  else if (key === "ArrowLeft" || key === "ArrowUp") fn = () => move(-1);
  if (!fn) return;
  e.preventDefault();
  act(fn);
}

function setup() {
  document.addEventListener("keydown", onKey);
  $("accept").addEventListener("click", () => act(accept));
  $("keep").addEventListener("click", () => act(keep));
  $("skip").addEventListener("click", () => act(skip));
  $("undo").addEventListener("click", () => act(undo));
  $("prev").addEventListener("click", () => act(() => move(-1)));
  $("next").addEventListener("click", () => act(() => move(1)));
  $("rescore").addEventListener("click", () => act(rescore));
  act(async () => {
    await refresh();
    await show(state.st.next || (state.st.order[0] && state.st.order[0].id) || null);
    poll();
  });
}

setup();
