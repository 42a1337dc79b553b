// Lasso's page: the /v1 API, driven by a person. No framework, no build step, no network but this server.
//
// Flow: upload -> session; "Show the mask" -> POST /v1/sessions/{id}/plan (the plan in words and the
// mask); clicks and a dragged box -> the same preview with `plan` + `corrections`, so only SAM's light
// decoder runs again; Apply -> POST /v1/sessions/{id}/edit with `Prefer: respond-async`, then the job is
// polled for progress; undo / redo / a click in the history move through the session's steps.
// The conversation: each step on the path to the current one as the person's words, what Lasso did
// and its mask; a follow-up ("make it darker", "no, the other one") is read by the server against the
// current step, and a question it asks back is shown there, with nothing changed.
// The session is in the address (#session=ID): a reload, or the link, reopens it where it was; the
// photos opened in this browser are listed on the start screen.
// Warnings travel with each result (`warning_details`: code, technical text, plain words): the page
// shows the plain words beside the mask or the badge, the technical line behind a "details" toggle,
// and the badge is never a plain tick when the mask is a guess or covers most of the picture.
// Everything works from the keyboard: the drop area, the photo (arrows + Enter), candidates (1-3).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem("lasso-key") || "",
  session: null,     // the session as the API answers it
  name: "photo",     // the upload's name, for the download
  image: null,       // the current step's picture (HTMLImageElement)
  before: null,      // its parent's, for the comparison
  preview: null,     // the last plan answer
  maskImg: null,     // the shown edit's mask (HTMLImageElement)
  heatImg: null,     // where the VLM looked for the shown edit's target, when its attention was read
  fixes: {},         // edit index -> {points, labels, box, candidate}
  edit: 0,           // which edit's mask is shown and corrected
  tool: "keep",
  drag: null,        // a box being dragged: {x0, y0, x1, y1} in image pixels
  busy: false,
  keySent: false,    // the last request carried a key (a 401 then means a wrong key)
  question: null,    // {asked, text}: what Lasso asked back about the last words, until the next ones
  baseImg: null,     // a revision's preview runs on the step before the current one: that picture
  thumbs: {},        // step id -> object URL of its mask, for the conversation
  cursor: null,      // the keyboard's cross on the photo: [x, y] in image pixels
  corner: null,      // the first corner of a box made from the keyboard
};

// What a warning's code means for the mask: the region is a guess, or too big to be one object.
const MASK_DOUBTS = ["not_found", "large_mask", "unsure", "rough_mask", "points_used"];
// What each model does, in the settings' list of models (the stage's name follows in brackets).
const PLAIN_STAGES = {
  vlm: "reads the words and the picture", segmenter: "outlines objects", inpainter: "paints",
  detector: "finds objects",
};
// The settings' grounders in plain words (their registry labels name models); others keep their label.
const PLAIN_GROUNDERS = {
  vlm: "where Lasso's reading of the picture points",
  attention: "where Lasso looked while reading",
  detector: "an object finder",
  auto: "an object finder, Lasso's reading breaking ties",
  sam3: "a search for every instance, checked by Lasso",
};
const RECENT = "lasso-recent";  // localStorage: [{id, name, when}], newest first

// ------------------------------------------------------------------ the API
class ApiError extends Error {
  constructor(status, detail, exitCode) { super(detail); this.status = status; this.exitCode = exitCode; }
}

async function api(method, path, form, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  const keySent = Boolean(state.key);
  let r;
  try {
    r = await fetch(path, { method, headers, body: form });
  } catch (e) {
    throw new ApiError(0, "the server cannot be reached; is `lasso serve` still running?");
  }
  if (r.status === 401) {
    await askKey(keySent);
    return api(method, path, form, extra);
  }
  const type = r.headers.get("content-type") || "";
  if (!r.ok) {
    let detail = `the server answered ${r.status}`, code;
    if (type.includes("json")) { const body = await r.json(); detail = body.detail || detail; code = body.exit_code; }
    if (r.headers.get("retry-after")) detail += ` (try again in ${r.headers.get("retry-after")} s)`;
    throw new ApiError(r.status, detail, code);
  }
  return type.includes("json") ? r.json() : r.blob();
}

function askKey(refused) {
  return new Promise((resolve) => {
    const dlg = $("key-dialog");
    $("key-refused").hidden = !refused;  // a key was sent and refused: say so, not just ask again
    dlg.addEventListener("close", () => {
      state.key = $("key").value.trim();
      sessionStorage.setItem("lasso-key", state.key);
      resolve();
    }, { once: true });
    dlg.showModal();
    $("key").focus();
  });
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new ApiError(0, "the browser could not show this picture"));
    img.src = src;
  });
}

async function stepImage(step) {
  const blob = await api("GET", `/v1/sessions/${state.session.id}/image?step=${step}&view=true`);
  return loadImage(URL.createObjectURL(blob));
}

// ------------------------------------------------------------------ messages and busy state
function plainError(e) {
  // What went wrong in words a person reads, and the technical line (or null) for a details toggle.
  const text = e instanceof Error ? e.message : String(e);
  const missing = text.match(/could not find '([^']+)'/);
  if (e.exitCode === 4 && missing) {
    return [`Lasso could not find ‘${missing[1]}’ in the picture, so it changed nothing. `
      + "Check the words, or choose another way to find it under Settings.", text];
  }
  if (e.status === 415 || /^not an image Lasso can read/.test(text)) {
    return ["This file is not a picture Lasso can read: it may be damaged, or not a photo. "
      + "Choose a PNG, JPEG, WebP or TIFF file.", text];
  }
  const plain = text.replace(/: the uploaded image$/, "");  // the server's name for the file, not the reader's
  return [plain.charAt(0).toUpperCase() + plain.slice(1), null];
}

function withDetails(parent, plain, technical) {
  // `plain` as the text, and the technical line behind a "details" toggle when it says more.
  parent.replaceChildren(document.createTextNode(plain));
  if (!technical || technical === plain) return;
  const more = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "details";
  const code = document.createElement("code");
  code.textContent = technical;
  more.append(summary, code);
  parent.append(" ", more);
}

function showError(e) {
  const box = $("error");
  const [plain, technical] = plainError(e);
  withDetails(box, plain, technical);
  box.hidden = false;
  console.error(e);
}
function clearError() { $("error").hidden = true; }

async function busy(label, fn) {
  if (state.busy) return;
  state.busy = true;
  clearError();
  document.body.style.cursor = "progress";
  setProgress(label);
  refreshButtons();
  try { await fn(); } catch (e) { showError(e); } finally {
    state.busy = false;
    document.body.style.cursor = "";
    $("progress-box").hidden = true;
    if (state.previewing) {  // a preview that failed: the current step's badge is back
      state.previewing = false;
      if (state.session && !state.preview) renderProof(state.session.steps.find((x) => x.id === state.session.cursor));
    }
    refreshButtons();
  }
}

function setProgress(message, value) {
  $("progress-box").hidden = false;
  $("progress-text").textContent = message;
  $("progress").setAttribute("aria-valuetext", message);
  const bar = $("progress");
  if (value === undefined) bar.removeAttribute("value"); else bar.value = value;
}

function refreshButtons() {
  const s = state.session, idle = !state.busy;
  const said = $("instruction").value.trim().length > 0;
  $("preview").disabled = !(idle && s && said);
  $("apply").disabled = !(idle && s && (said || state.preview));
  $("undo").disabled = !(idle && s && s.can_undo);
  $("redo").disabled = !(idle && s && s.can_redo);
  $("download").disabled = !(idle && s && s.cursor !== 0);  // nothing to download before an edit
  // the mask tools correct a mask: there is none to correct before "Show the mask"
  const masked = idle && Boolean(state.preview);
  document.querySelectorAll(".tool, #clear-fixes, #candidates button").forEach((b) => { b.disabled = !masked; });
  $("canvas").classList.toggle("no-mask", !state.preview);
  $("keys-hint").hidden = !state.preview;
  // why nothing can run, said where the buttons are
  const why = !s ? "Choose a photo first."
    : state.busy ? ""
    : !said && !state.preview ? ($("instruction").value.length
      ? "Only spaces so far: write what should change to see the mask or apply it."
      : "Write what should change to see the mask or apply it.")
    : "";
  if ($("why-not").textContent !== why) $("why-not").textContent = why;
  $("why-not").hidden = !why;
  $("download").title = s && s.cursor === 0 ? "Nothing to download yet: make an edit first"
    : "Download the picture as it is now";
}

function setHint() {
  // The instruction's example fits the state: follow-ups only once there is an edit to follow up.
  const s = state.session;
  $("instruction").placeholder = s && s.cursor !== 0
    ? "e.g. make it darker, no, the other one, and the bike too, or a new edit"
    : "e.g. make the car red, remove the dog, or replace the background with a beach";
}

// ------------------------------------------------------------------ drawing
function fixesOf(i) {
  if (!state.fixes[i]) state.fixes[i] = { points: [], labels: [], box: null, candidate: null };
  return state.fixes[i];
}

function draw() {
  const img = (state.preview && state.baseImg) || state.image;
  if (!img) return;
  const canvas = $("canvas");
  const fit = Math.min(1, 1400 / Math.max(img.naturalWidth, img.naturalHeight));
  canvas.width = Math.max(1, Math.round(img.naturalWidth * fit));
  canvas.height = Math.max(1, Math.round(img.naturalHeight * fit));
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = fit < 1;
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  if (state.diffImg && $("show-diff").checked) {  // the difference view replaces the picture
    ctx.drawImage(state.diffImg, 0, 0, canvas.width, canvas.height);
    return;
  }
  // The slider runs from Before (0: the picture before the last step) to After (100: as it is now):
  // left of the divider shows after, right of it before.
  drawBefore(ctx, canvas, state.before, Number($("compare").value) / 100);
  if (state.heatImg && $("show-heat").checked) {
    ctx.save();
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(state.heatImg, 0, 0, canvas.width, canvas.height);
    ctx.restore();
  }
  if (state.maskImg) ctx.drawImage(tint(state.maskImg, [255, 61, 110], 0.5), 0, 0, canvas.width, canvas.height);
  const f = state.fixes[state.edit];
  const sx = canvas.width / img.naturalWidth, sy = canvas.height / img.naturalHeight;
  const g = state.heatImg && $("show-heat").checked && state.preview && state.preview.groundings[state.edit];
  if (g && g.points) g.points.forEach(([x, y], k) => {  // the attention's own prompts for SAM: rings
    ctx.beginPath();
    ctx.arc(x * sx, y * sy, 6, 0, 2 * Math.PI);
    ctx.lineWidth = 3;
    ctx.strokeStyle = g.labels[k] === 1 ? "#16a34a" : "#dc2626";
    ctx.stroke();
  });
  const box = state.drag || (f && f.box && { x0: f.box[0], y0: f.box[1], x1: f.box[2], y1: f.box[3] });
  if (box) {
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(box.x0 * sx, box.y0 * sy, (box.x1 - box.x0) * sx, (box.y1 - box.y0) * sy);
    ctx.setLineDash([]);
  }
  if (f) f.points.forEach(([x, y], k) => {
    const keep = f.labels[k] === 1;
    ctx.beginPath();
    ctx.arc(x * sx, y * sy, 7, 0, 2 * Math.PI);
    ctx.fillStyle = keep ? "#16a34a" : "#dc2626";
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    ctx.fillStyle = "#fff";
    ctx.fillRect(x * sx - 4, y * sy - 1, 8, 2);
    if (keep) ctx.fillRect(x * sx - 1, y * sy - 4, 2, 8);
  });
  if (state.cursor && state.preview) {  // the keyboard's cross, over the points (arrow keys move it, Enter marks)
    const [cx, cy] = state.cursor;
    if (state.corner) {
      const [ax, ay] = state.corner;
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffd400";
      ctx.strokeRect(Math.min(ax, cx) * sx, Math.min(ay, cy) * sy, Math.abs(cx - ax) * sx, Math.abs(cy - ay) * sy);
      ctx.setLineDash([]);
    }
    for (const [w, c] of [[3, "#000"], [1.5, "#fff"]]) {  // a black cross under a white one: seen on any colour
      ctx.lineWidth = w;
      ctx.strokeStyle = c;
      ctx.beginPath();
      ctx.moveTo(cx * sx - 10, cy * sy); ctx.lineTo(cx * sx + 10, cy * sy);
      ctx.moveTo(cx * sx, cy * sy - 10); ctx.lineTo(cx * sx, cy * sy + 10);
      ctx.stroke();
    }
  }
}

// An image drawn on a canvas of its own size: the canvas, its context and its pixels, to read and rewrite.
function pixelsOf(img) {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return { c, ctx, d: ctx.getImageData(0, 0, c.width, c.height) };
}

function tint(maskImg, rgb, opacity) {
  // A grey mask PNG (white = painted) -> a coloured, see-through layer of the same size.
  const { c, ctx, d } = pixelsOf(maskImg);
  let on = 0;
  for (let i = 0; i < d.data.length; i += 4) {
    const v = d.data[i];
    if (v > 0) on++;
    d.data[i] = rgb[0]; d.data[i + 1] = rgb[1]; d.data[i + 2] = rgb[2];
    d.data[i + 3] = v * opacity;
  }
  ctx.putImageData(d, 0, 0);
  const total = c.width * c.height;
  $("mask-info").textContent = `mask: ${on.toLocaleString()} px (${(100 * on / total).toFixed(1)}%)`;
  $("mask-info").dataset.pixels = on;
  return c;
}

function imagePoint(ev) {
  const canvas = $("canvas"), r = canvas.getBoundingClientRect(), img = state.image;
  const x = Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1) * img.naturalWidth;
  const y = Math.min(Math.max((ev.clientY - r.top) / r.height, 0), 1) * img.naturalHeight;
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

// ------------------------------------------------------------------ the session
async function upload(file) {
  if (!file) return;
  await busy("uploading", async () => {
    const form = new FormData();
    form.append("image", file, file.name);
    state.session = await api("POST", "/v1/sessions", form);
    state.name = (file.name || "photo").replace(/\.[^.]*$/, "") || "photo";
    remember(state.session.id, state.name);
    await openStage();
    $("instruction").focus();
  });
}

async function openStage() {
  resetPreview();
  await showSession();
  $("drop").hidden = true;
  $("recent-box").hidden = true;
  $("stage").hidden = false;
  $("history-box").hidden = false;
  document.body.classList.add("has-photo");
}

// ------------------------------------------------------------------ the session in the address, recent photos
function recent() {
  try { return JSON.parse(localStorage.getItem(RECENT) || "[]").filter((r) => r && r.id); } catch (e) { return []; }
}
function remember(id, name) {
  const list = [{ id, name, when: Date.now() }, ...recent().filter((r) => r.id !== id)].slice(0, 8);
  localStorage.setItem(RECENT, JSON.stringify(list));
}
function forget(id) { localStorage.setItem(RECENT, JSON.stringify(recent().filter((r) => r.id !== id))); }

function setAddress() {
  const s = state.session;
  history.replaceState(null, "", s ? `#session=${encodeURIComponent(s.id)}` : location.pathname);
}

function renderRecent() {
  const list = $("recent"), items = recent();
  list.replaceChildren(...items.map((r) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.session = r.id;
    b.textContent = `${r.name} · ${new Date(r.when).toLocaleString()}`;
    b.addEventListener("click", () => reopen(r.id));
    li.append(b);
    return li;
  }));
  $("recent-box").hidden = items.length === 0;
}

async function reopen(id) {
  await busy("opening the photo", async () => {
    try {
      state.session = await api("GET", `/v1/sessions/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e.status === 404 || e.status === 422) {
        forget(id);
        renderRecent();
        history.replaceState(null, "", location.pathname);
        throw new ApiError(404, "that photo's session is gone (it expired or was deleted): upload the photo again");
      }
      throw e;
    }
    state.name = (recent().find((r) => r.id === id) || { name: "photo" }).name;
    remember(id, state.name);
    await openStage();
  });
}

async function showSession() {
  const s = state.session;
  setAddress();
  state.image = await stepImage(s.cursor);
  const here = s.steps.find((x) => x.id === s.cursor);
  // before: the picture the step was made from (a refinement's is the one before the step it refines)
  state.before = here ? await stepImage(madeFrom(here)) : null;
  $("compare-row").hidden = !state.before;
  $("compare").value = 100;  // "After": the picture as it is now
  state.diffImg = null;
  renderProof(here);
  if ($("show-diff").checked && state.before) await makeDiff();
  renderHistory();
  setHint();
  refreshButtons();
  draw();
  await renderChat();
}

const madeFrom = (step) => (step.base === null || step.base === undefined ? step.parent : step.base);

// ------------------------------------------------------------------ the conversation
function bubble(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  const body = document.createElement("div");
  body.className = "said";
  body.textContent = text;
  li.append(body);
  return li;
}

async function maskURL(step) {
  const key = `${state.session.id}:${step}`;  // a step's mask never changes
  if (!state.thumbs[key]) {
    state.thumbs[key] = URL.createObjectURL(await api("GET", `/v1/sessions/${state.session.id}/mask?step=${step}`));
  }
  return state.thumbs[key];
}

async function renderChat() {
  // The path to the current step as a conversation: the person's words, then what Lasso did (in
  // words, with the proof and the mask as a thumbnail); a question Lasso asked back comes last.
  const s = state.session, list = $("chat"), items = [];
  const byId = (id) => s.steps.find((x) => x.id === id);
  const said = [];  // the path; a step a revision replaced off the path (sessions made before issue 29) greyed
  const onPath = new Set(s.path);
  const withReplaced = (step, replaced) => {
    const old = step.turn && step.turn.revises ? byId(step.turn.revises) : null;
    if (old && !onPath.has(old.id)) withReplaced(old, true);
    said.push({ step, replaced });
  };
  for (const id of s.path) withReplaced(byId(id), false);
  for (const { step, replaced } of said) {
    const id = step.id;
    items.push(bubble(replaced ? "you replaced" : "you", step.instruction));
    const li = bubble(replaced ? "lasso replaced" : "lasso", step.reply || "");
    li.dataset.step = id;
    const p = step.preservation;
    if (p) {
      const proof = document.createElement("span");
      proof.className = "proof";
      proof.textContent = p.identical_outside ? "nothing outside the mask changed"
        : `${p.changed_outside.toLocaleString("en-US")} pixels outside the mask changed`;
      li.querySelector(".said").append(proof);
    }
    for (const w of notesOf(step)) {  // what the step's warnings say, with the step, in plain words
      const note = document.createElement("span");
      note.className = "proof note";
      note.textContent = w.plain;
      li.querySelector(".said").append(note);
    }
    const img = document.createElement("img");
    img.alt = `the mask of step ${id}`;
    img.dataset.step = id;
    li.prepend(img);
    items.push(li);
  }
  if (state.question) {
    items.push(bubble("you", state.question.asked));
    items.push(bubble("lasso question", state.question.text));
  }
  list.replaceChildren(...items);
  $("chat-box").hidden = items.length === 0;
  for (const img of list.querySelectorAll("img[data-step]")) img.src = await maskURL(Number(img.dataset.step));
}

function asked(words, answer) {
  // What the server made of the words: a question back (shown; nothing changed), or nothing to ask.
  state.question = answer && answer.question ? { asked: words, text: answer.question } : null;
  return Boolean(state.question);
}

// A step's or a preview's warnings as {code, text, plain, edit} (a session made before they had
// codes: its plain strings, as they are).
function notesOf(x) {
  if (x.warning_details && x.warning_details.length) return x.warning_details;
  return (x.warnings || []).map((text) => ({ code: "note", text, plain: text, edit: null }));
}

function doubt(notes, edits, share) {
  // What the badge must say before any tick: the mask is a guess, or covers most of the picture
  // (`share`, 0..1, of the picture). null when nothing casts doubt on it.
  const codes = new Set(notes.map((w) => w.code));
  if (!MASK_DOUBTS.some((c) => codes.has(c))) return null;
  const missing = notes.find((w) => w.code === "not_found");
  const target = missing && edits[missing.edit || 0] ? edits[missing.edit || 0].target : null;
  const pct = share !== null && share !== undefined ? `${Math.round(100 * share)}%` : "most";
  const big = codes.has("large_mask");
  if (big && target) return `The mask covers ${pct} of the picture: Lasso could not find \u2018${target}\u2019.`;
  if (big) return `The mask covers ${pct} of the picture: check that this is what you meant.`;
  if (target) return `Lasso could not find \u2018${target}\u2019: the mask is its guess.`;
  return notes.find((w) => MASK_DOUBTS.includes(w.code)).plain;
}

// What a doubt's sentence already says: left out of the list beside it (its technical lines go with it).
const SAID_BY_DOUBT = ["not_found", "large_mask"];
const technical = (notes) => notes.filter((w) => SAID_BY_DOUBT.includes(w.code)).map((w) => w.text).join("\n");

function renderNotes(list, notes) {
  list.replaceChildren(...notes.map((w) => {
    const li = document.createElement("li");
    li.dataset.code = w.code;
    withDetails(li, w.plain, w.text);
    return li;
  }));
  list.hidden = notes.length === 0;
}

// The proof of the current step: what changed in its picture, as written, outside its mask, with
// what its warnings say. Hidden while a new mask is previewed: it speaks of the last step, not of it.
// A before/after slider's picture: `before` drawn right of the divider at `cut` (0-1), after left of it.
function drawBefore(ctx, canvas, before, cut) {
  if (!before || cut >= 1) return;
  ctx.save();
  ctx.beginPath();
  ctx.rect(canvas.width * cut, 0, canvas.width * (1 - cut), canvas.height);
  ctx.clip();
  ctx.drawImage(before, 0, 0, canvas.width, canvas.height);
  ctx.restore();
  ctx.fillStyle = "#fff";
  if (cut > 0) ctx.fillRect(canvas.width * cut - 1, 0, 2, canvas.height);
}

function renderProof(step) {
  const p = step && step.preservation;
  $("proof-row").hidden = !p || Boolean(state.preview) || state.previewing;
  if (!p) return;
  const n = (x) => x.toLocaleString("en-US");
  const badge = $("proof"), notes = notesOf(step);
  const edits = (step.plan && step.plan.edits) || [];
  const share = p.inside_pixels / Math.max(1, p.inside_pixels + p.outside_pixels);
  const doubtful = p.identical_outside ? doubt(notes, edits, share) : null;
  const random = notes.some((w) => w.code === "random_weights");
  badge.classList.toggle("bad", !p.identical_outside);
  badge.classList.toggle("warn", Boolean(doubtful));
  badge.classList.toggle("neutral", !doubtful && random && p.identical_outside);
  const kept = `nothing else changed: 0 of ${n(p.outside_pixels)} pixels outside the mask`;
  const said = !p.identical_outside
    ? `changed outside the mask: ${n(p.changed_outside)} of ${n(p.outside_pixels)} pixels`
      + (p.psnr_outside ? ` (PSNR ${p.psnr_outside.toFixed(1)} dB)` : "")
    : doubtful ? `\u26a0 ${doubtful} (${kept})`
    : random ? `${kept} (the test models are random, so the picture itself is noise)`
    : `\u2713 ${kept}`;
  withDetails(badge, said, doubtful ? technical(notes) : null);
  renderNotes($("step-warnings"), doubtful ? notes.filter((w) => !SAID_BY_DOUBT.includes(w.code)) : notes);
  $("fix-step").hidden = !doubtful;
  renderCredentials(step.credentials);
}

// Beside the proof: the Content Credentials signed into the step's picture (who signed, and that
// the regions it names are where the picture changed), or that none were written.
function renderCredentials(c) {
  const line = $("credentials");
  line.hidden = !c;
  if (!c) return;
  const who = (/CN=([^,]+)/.exec(c.signer || "") || [null, c.signer])[1];  // a certificate's common name
  line.textContent = c.signed
    ? `Content Credentials signed by ${who}${c.local ? " (this machine's own identity)" : ""}: `
      + "the file says which regions were edited and by what"
    : "no Content Credentials in this file (turned off, or a format they cannot be written in)";
}

// Where the step changed the picture: before and after compared pixel by pixel, changes inside the
// mask in yellow, outside it in magenta, the rest dimmed (the same picture as `lasso verify --diff`).
async function makeDiff() {
  const s = state.session;
  const mask = await loadImage(URL.createObjectURL(await api("GET", `/v1/sessions/${s.id}/mask?step=${s.cursor}`)));
  const w = state.image.naturalWidth, h = state.image.naturalHeight;
  const read = (img) => {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0, w, h);
    return ctx.getImageData(0, 0, w, h);
  };
  const a = read(state.before).data, b = read(state.image), m = read(mask).data;
  const out = b.data;
  for (let i = 0; i < out.length; i += 4) {
    const changed = a[i] !== out[i] || a[i + 1] !== out[i + 1] || a[i + 2] !== out[i + 2] || a[i + 3] !== out[i + 3];
    const grey = 40 + 60 * (out[i] + out[i + 1] + out[i + 2]) / 765;
    const [r, g, bl] = !changed ? [grey, grey, grey] : m[i] > 0 ? [255, 210, 0] : [255, 0, 255];
    out[i] = r; out[i + 1] = g; out[i + 2] = bl; out[i + 3] = 255;
  }
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  c.getContext("2d").putImageData(b, 0, 0);
  state.diffImg = c;
  $("canvas").dataset.diffOutside = String(countOutside(a, b.data, m));
}

function countOutside(a, d, m) {  // magenta pixels: changed outside the mask
  let k = 0;
  for (let i = 0; i < d.length; i += 4) if (m[i] === 0 && d[i] === 255 && d[i + 1] === 0 && d[i + 2] === 255) k++;
  return k;
}

function renderHistory() {
  // The history is a tree: each step under the one it was applied to, so a branch (an edit after an
  // undo) shows as one, beside the steps it did not replace. Each entry is a button (Tab, Enter).
  const s = state.session, list = $("history");
  list.replaceChildren();
  const onPath = new Set(s.path);
  const kids = (parent) => s.steps.filter((x) => x.parent === parent);
  const item = (id, text, into, branches) => {
    const li = document.createElement("li");
    li.dataset.step = id;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${id}. ${text}`;
    if (id === s.cursor) { li.classList.add("current"); b.setAttribute("aria-current", "step"); }
    if (id !== 0 && !onPath.has(id) && id !== s.cursor) {
      li.classList.add("off-path");
      b.title = "on another branch (made after an undo): go back to it";
    }
    b.addEventListener("click", () => go(id));
    li.append(b);
    if (branches > 1) {
      const tag = document.createElement("span");
      tag.className = "branch";
      tag.textContent = `${branches} branches`;
      tag.title = "after an undo, a new edit starts a branch; the other stays here";
      li.append(tag);
    }
    into.append(li);
    return li;
  };
  const label = (step) => `${step.instruction || step.plan.instruction}`
    + (Object.keys(step.corrections || {}).length ? " (you fixed the mask)" : "");
  // One line after another while each step has one next step; a step with several (an edit after an
  // undo) opens a list per branch under it.
  const grow = (parent, li, into) => {
    const children = kids(parent);
    if (children.length === 1) {
      const step = children[0];
      grow(step.id, item(step.id, label(step), into, kids(step.id).length), into);
      return;
    }
    for (const step of children) {
      const ol = document.createElement("ol");
      grow(step.id, item(step.id, label(step), ol, kids(step.id).length), ol);
      li.append(ol);
    }
  };
  grow(0, item(0, "the original photo", list, kids(0).length), list);
}

async function sessionCall(path, form) {
  state.question = null;
  await busy("working", async () => {
    state.session = await api("POST", `/v1/sessions/${state.session.id}/${path}`, form);
    resetPreview();
    await showSession();
  });
}
const undo = () => sessionCall("undo");
const redo = () => sessionCall("redo");
function go(step) {
  const form = new FormData();
  form.append("step", step);
  return sessionCall("go", form);
}

// ------------------------------------------------------------------ preview and corrections
function resetPreview() {
  state.preview = null;
  state.maskImg = null;
  state.heatImg = null;
  $("heat-row").hidden = true;
  state.fixes = {};
  state.edit = 0;
  state.baseImg = null;
  $("turn-said").hidden = true;
  $("plan-box").hidden = true;
  $("candidates-row").hidden = true;
  $("mask-info").textContent = "";
  delete $("mask-info").dataset.pixels;
  $("preview-caution").hidden = true;
  state.cursor = null;
  state.corner = null;
  if (state.session) renderProof(state.session.steps.find((x) => x.id === state.session.cursor));
}

function correctionsJSON() {
  const out = [];
  for (const [i, f] of Object.entries(state.fixes)) {
    if (!f.points.length && !f.box && f.candidate === null) continue;
    const c = { edit: Number(i) };
    if (f.points.length) { c.points = f.points; c.labels = f.labels; }
    if (f.box) c.box = f.box;
    if (f.candidate !== null) c.candidate = f.candidate;
    out.push(c);
  }
  return out.length ? JSON.stringify(out) : null;
}

function previewForm(withPlan) {
  const form = new FormData();
  form.append("instruction", $("instruction").value.trim());
  if (withPlan && state.preview) form.append("plan", JSON.stringify(state.preview.plan));
  if ($("grounder").value) form.append("grounder", $("grounder").value);
  if (!$("preset-row").hidden && $("preset").value) form.append("preset", $("preset").value);
  const fixes = correctionsJSON();
  if (fixes) form.append("corrections", fixes);
  return form;
}

async function runJob(path, form) {
  // POST as a background job and follow it: its position in the queue, the model loading on a first
  // run, the denoising steps. Returns the job's result; a failed job throws its error.
  let job = await api("POST", path, form, { Prefer: "respond-async" });
  while (job.state === "queued" || job.state === "running") {
    if (job.state === "queued") setProgress(job.position ? `waiting: ${job.position} ahead` : "starting");
    else setProgress(job.message, job.steps ? job.step / job.steps : undefined);
    await new Promise((r) => setTimeout(r, 250));
    job = await api("GET", `/v1/jobs/${job.id}`);
  }
  if (job.state === "failed") throw new ApiError(job.error.status, job.error.detail, job.error.exit_code);
  return job.result;
}

async function preview(keepPlan, fresh = false) {
  // keepPlan: send the shown plan back (a correction: only the mask changes); fresh: forget the corrections.
  await busy(keepPlan ? "updating the mask" : "reading the instruction and finding the target", async () => {
    if (fresh) { state.fixes = {}; state.edit = 0; }
    state.previewing = true;  // the last step's badge is not about this mask: hidden until it is applied
    $("proof-row").hidden = true;
    const words = $("instruction").value.trim();
    const p = await runJob(`/v1/sessions/${state.session.id}/plan`, previewForm(keepPlan));
    if (asked(words, p)) {  // a question back: nothing to preview
      $("instruction").value = "";
      await renderChat();
      return;
    }
    if (p.turn && p.turn.kind === "undo") {  // "undo", said in words
      state.session = await api("POST", `/v1/sessions/${state.session.id}/undo`);
      $("instruction").value = "";
      resetPreview();
      await showSession();
      return;
    }
    await renderChat();  // an earlier question answered by these words: gone
    state.previewing = false;
    state.preview = p;
    state.baseImg = p.base !== undefined && p.base !== state.session.cursor ? await stepImage(p.base) : null;
    if (state.edit >= p.edits.length) state.edit = 0;
    await showPreview();
  });
}

async function showPreview() {
  const p = state.preview;
  const plan = $("plan");
  const said = p.turn && p.turn.said;  // a follow-up: how it was read ("the same edit, darker: ...")
  $("turn-said").textContent = said
    ? `${said}${p.turn.kind === "revise" ? " (made again from the picture before the last step; Undo goes back to it)" : ""}`
    : "";
  $("turn-said").hidden = !said;
  plan.replaceChildren(...p.describe.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));

  const pick = $("edit-pick");
  pick.replaceChildren(...p.describe.map((text, i) => new Option(`${i + 1}. ${text}`, i)));
  pick.value = state.edit;
  $("edit-pick-row").hidden = p.describe.length < 2;
  $("plan-box").hidden = false;
  state.maskImg = await loadImage(`data:image/png;base64,${p.masks[state.edit]}`);
  const heat = (p.heatmaps || [])[state.edit];
  state.heatImg = heat ? await loadImage(`data:image/png;base64,${heat}`) : null;
  $("heat-row").hidden = !heat;
  await showCandidates();
  draw();  // (tint() counts the mask's pixels as it draws it)
  const px = Number($("mask-info").dataset.pixels);
  const img = state.baseImg || state.image;
  const notes = notesOf(p);
  const caution = doubt(notes, p.edits, px / (img.naturalWidth * img.naturalHeight));
  if (caution) {
    withDetails($("preview-caution"), `\u26a0 ${caution} Correct it with the tools under the photo (or the keyboard) `
      + "before you apply.", technical(notes));
  }
  $("preview-caution").hidden = !caution;
  renderNotes($("warnings"), caution ? notes.filter((w) => !SAID_BY_DOUBT.includes(w.code)) : notes);
}

async function showCandidates() {
  const p = state.preview, cands = p.candidates[state.edit] || [];
  const row = $("candidates");
  row.replaceChildren();
  $("candidates-row").hidden = cands.length === 0;
  for (const [k, b64] of cands.entries()) {
    const mask = await loadImage(`data:image/png;base64,${b64}`);
    const c = document.createElement("canvas");
    c.width = 192;
    c.height = Math.max(1, Math.round(192 * state.image.naturalHeight / state.image.naturalWidth));
    const ctx = c.getContext("2d");
    ctx.drawImage(state.image, 0, 0, c.width, c.height);
    const info = $("mask-info").textContent, px = $("mask-info").dataset.pixels;
    ctx.drawImage(tint(mask, [255, 61, 110], 0.6), 0, 0, c.width, c.height);
    $("mask-info").textContent = info;  // tint() reports the mask it drew; keep the main one's
    $("mask-info").dataset.pixels = px;
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.candidate = k;
    b.title = `use outline ${k + 1} (key ${k + 1})`;
    b.setAttribute("aria-label", `outline ${k + 1}` + (p.chosen[state.edit] === k ? ", in use" : ""));
    if (p.chosen[state.edit] === k) b.classList.add("chosen");
    const tag = document.createElement("small");
    tag.textContent = k + 1;
    b.append(c, tag);
    b.addEventListener("click", () => {
      fixesOf(state.edit).candidate = k;
      preview(true);
    });
    row.append(b);
  }
}

// ------------------------------------------------------------------ apply, with progress
async function apply() {
  const form = previewForm(true);
  for (const id of ["seed", "steps", "guidance"]) if ($(id).value !== "") form.append(id, $(id).value);
  const words = $("instruction").value.trim();
  await busy("waiting for the GPU", async () => {
    const session = await runJob(`/v1/sessions/${state.session.id}/edit`, form);
    setProgress("done", 1);
    state.session = session;
    asked(words, session);
    resetPreview();
    $("instruction").value = "";
    await showSession();
  });
}

async function download() {
  await busy("preparing the download", async () => {
    const blob = await api("GET", `/v1/sessions/${state.session.id}/image`);
    const ext = state.session.cursor === 0 ? (state.session.original.match(/\.[^.]+$/) || [".png"])[0] : ".png";
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = state.session.cursor === 0 ? `${state.name}${ext}` : `${state.name}-lasso-${state.session.cursor}.png`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
}

// ------------------------------------------------------------------ wiring
function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => upload(e.target.files[0]));
  drop.addEventListener("click", () => $("file").click());
  drop.addEventListener("keydown", (e) => {  // a button: Enter or Space opens the file chooser
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload(e.dataTransfer.files[0]);
  });
  $("ask").addEventListener("submit", (e) => { e.preventDefault(); preview(false, true); });
  $("instruction").addEventListener("input", () => {
    if (state.preview) resetPreview();  // a new instruction: the old mask no longer applies
    draw();
    refreshButtons();
  });
  $("instruction").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); if (!$("preview").disabled) preview(false, true); }
  });
  $("apply").addEventListener("click", apply);
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("download").addEventListener("click", download);
  $("new-photo").addEventListener("click", () => {
    state.session = null; state.image = null; state.before = null; state.diffImg = null;
    state.question = null; state.thumbs = {}; $("chat-box").hidden = true;
    $("proof-row").hidden = true;
    resetPreview();
    setAddress();
    $("file").value = "";
    $("instruction").value = "";
    $("stage").hidden = true; $("history-box").hidden = true; $("drop").hidden = false;
    document.body.classList.remove("has-photo");
    renderRecent();
    setHint();
    refreshButtons();
    $("drop").focus();
  });
  $("fix-step").addEventListener("click", correctStep);
  $("compare").addEventListener("input", draw);
  $("show-heat").addEventListener("change", draw);
  $("preset").addEventListener("change", showModels);
  $("show-diff").addEventListener("change", async () => {
    if ($("show-diff").checked && !state.diffImg && state.before) await makeDiff();
    draw();
  });
  $("edit-pick").addEventListener("change", async (e) => {
    state.edit = Number(e.target.value);
    await showPreview();
  });
  document.querySelectorAll(".tool").forEach((b) => b.addEventListener("click", () => {
    state.tool = b.dataset.tool;
    state.corner = null;
    document.querySelectorAll(".tool").forEach((x) => {
      x.classList.toggle("active", x === b);
      x.setAttribute("aria-pressed", String(x === b));
    });
    draw();
  }));
  $("clear-fixes").addEventListener("click", () => {
    if (!state.preview) return;  // (disabled then too: no mask to correct)
    delete state.fixes[state.edit];
    preview(true);
  });

  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", (e) => {
    if (!state.image || state.busy || !state.preview) return;  // no mask yet: nothing to correct
    if (state.tool === "box") {
      const [x, y] = imagePoint(e);
      state.drag = { x0: x, y0: y, x1: x, y1: y, sx: x, sy: y };
      canvas.setPointerCapture(e.pointerId);
    }
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!state.drag) return;
    const [x, y] = imagePoint(e), d = state.drag;
    Object.assign(d, { x0: Math.min(d.sx, x), y0: Math.min(d.sy, y), x1: Math.max(d.sx, x), y1: Math.max(d.sy, y) });
    draw();
  });
  canvas.addEventListener("pointerup", async (e) => {
    if (!state.image || state.busy) return;
    if (!state.preview) {  // the tools correct a mask: ask for one first, never keep a hidden correction
      state.drag = null;
      showError("first say what should change and press “Show the mask”; then click the photo to correct it");
      return;
    }
    if (state.tool === "box") {
      const d = state.drag;
      state.drag = null;
      if (!d || d.x1 - d.x0 < 3 || d.y1 - d.y0 < 3) { draw(); return; }  // a click, not a box
      fixesOf(state.edit).box = [d.x0, d.y0, d.x1, d.y1];
    } else {
      const f = fixesOf(state.edit);
      f.points.push(imagePoint(e));
      f.labels.push(state.tool === "keep" ? 1 : 0);
    }
    draw();
    await preview(true);
  });
  canvas.addEventListener("keydown", photoKey);
  canvas.addEventListener("focus", () => {
    if (state.preview && !state.cursor && state.image) {  // the cross starts in the middle of the photo
      const img = state.baseImg || state.image;
      state.cursor = [Math.round(img.naturalWidth / 2), Math.round(img.naturalHeight / 2)];
      draw();
    }
  });
  document.addEventListener("keydown", (e) => {
    const typing = ["TEXTAREA", "INPUT", "SELECT"].includes(e.target.tagName);
    if (!typing && !e.ctrlKey && !e.metaKey && !e.altKey && /^[1-9]$/.test(e.key) && state.preview && !state.busy) {
      const b = document.querySelector(`#candidates button[data-candidate='${Number(e.key) - 1}']`);
      if (b) { e.preventDefault(); b.click(); }  // an outline by its number
      return;
    }
    if (!(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== "z" || e.target.tagName === "TEXTAREA") return;
    e.preventDefault();
    if (e.shiftKey) { if (!$("redo").disabled) redo(); } else if (!$("undo").disabled) undo();
  });
}

async function photoKey(e) {
  // The mask tools from the keyboard: arrows move a cross over the photo (Shift: ten times as far),
  // Enter or Space marks a point with the chosen tool, or, with the box tool, a first corner and then
  // the second; Escape forgets a first corner.
  if (!state.preview || state.busy) return;
  const img = state.baseImg || state.image;
  if (!state.cursor) state.cursor = [Math.round(img.naturalWidth / 2), Math.round(img.naturalHeight / 2)];
  const step = Math.max(1, Math.round(Math.max(img.naturalWidth, img.naturalHeight) / (e.shiftKey ? 10 : 100)));
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[e.key]) {
    e.preventDefault();
    const [dx, dy] = moves[e.key];
    state.cursor = [Math.min(Math.max(state.cursor[0] + dx, 0), img.naturalWidth),
      Math.min(Math.max(state.cursor[1] + dy, 0), img.naturalHeight)];
    draw();
    return;
  }
  if (e.key === "Escape" && state.corner) { state.corner = null; draw(); return; }
  if (e.key !== "Enter" && e.key !== " ") return;
  e.preventDefault();
  const [x, y] = state.cursor;
  if (state.tool === "box") {
    if (!state.corner) { state.corner = [x, y]; draw(); return; }
    const [ax, ay] = state.corner;
    state.corner = null;
    if (Math.abs(x - ax) < 3 || Math.abs(y - ay) < 3) { draw(); return; }
    fixesOf(state.edit).box = [Math.min(ax, x), Math.min(ay, y), Math.max(ax, x), Math.max(ay, y)];
  } else {
    const f = fixesOf(state.edit);
    f.points.push([x, y]);
    f.labels.push(state.tool === "keep" ? 1 : 0);
  }
  draw();
  await preview(true);
  $("canvas").focus();
}

async function correctStep() {
  // The badge's offer: back to the picture before the step, with its words and its mask shown for correcting.
  const s = state.session, step = s.steps.find((x) => x.id === s.cursor);
  if (!step) return;
  await sessionCall("undo");
  $("instruction").value = step.instruction;
  refreshButtons();
  await preview(false, true);
  $("canvas").focus();
}

// ------------------------------------------------------------------ bring an edit from another app
// The original and another app's result -> POST /v1/contain: the result lined up on the original, its
// colour drift undone, its change kept inside its region and every other pixel put back. The page says
// what the other app did in words, shows the region over the result with a before/after slider, and
// offers the contained file (the original's format) for download.
const contained = { after: null, before: null, layer: null, box: null, url: null, beforeURL: null };

function toggleContain() {
  const open = $("contain-panel").hidden;
  $("contain-panel").hidden = !open;
  $("contain-open").setAttribute("aria-expanded", String(open));
  if (open) $("contain-original").focus();
}

async function containEdit() {
  const [original, edited, mask] = ["contain-original", "contain-edited", "contain-mask"].map((id) => $(id).files[0]);
  if (!original || !edited) { showError("choose your original photo and the other app's result first"); return; }
  await busy("lining the other app's result up on your photo", async () => {
    const form = new FormData();
    form.append("original", original, original.name);
    form.append("edited", edited, edited.name);
    if (mask) form.append("mask", mask, mask.name);
    let d;
    try { d = await api("POST", "/v1/contain", form); } catch (e) { throw containWords(e); }
    await showContained(d, original);
  });
}

function containWords(e) {
  // The server's names for the two files (the CLI's arguments) as the person knows them.
  if (!(e instanceof ApiError)) return e;
  const text = e.message.replace(/\bEDITED\b/g, "the other app's result").replace(/\bORIGINAL\b/g, "your original photo");
  return new ApiError(e.status, text, e.exitCode);
}

async function showContained(d, file) {
  for (const url of [contained.url, contained.beforeURL]) if (url) URL.revokeObjectURL(url);
  const bytes = Uint8Array.from(atob(d.image), (c) => c.charCodeAt(0));
  contained.url = URL.createObjectURL(new Blob([bytes], { type: d.media_type }));
  contained.beforeURL = URL.createObjectURL(file);
  contained.after = await loadImage(contained.url);
  contained.before = await loadImage(contained.beforeURL).catch(() => null);  // a TIFF a browser cannot show
  const region = regionLayer(await loadImage(`data:image/png;base64,${d.mask}`));
  Object.assign(contained, region);
  $("contain-said").textContent = containSaid(d, region.box);
  const p = d.preservation, n = (x) => x.toLocaleString("en-US");
  $("contain-proof").classList.toggle("bad", Boolean(p && !p.identical_outside));
  $("contain-proof").textContent = !p ? "Lasso could not read the result back to check it."
    : p.identical_outside ? `\u2713 nothing else changed: 0 of ${n(p.outside_pixels)} pixels outside the region`
    : `changed outside the region: ${n(p.changed_outside)} of ${n(p.outside_pixels)} pixels`;
  const notes = $("contain-warnings");
  notes.replaceChildren(...d.warnings.map((w) => { const li = document.createElement("li"); li.textContent = w; return li; }));
  notes.hidden = d.warnings.length === 0;
  const stem = (file.name || "photo").replace(/\.[^.]*$/, "") || "photo";
  const link = $("contain-download");
  link.href = contained.url;
  link.download = `${stem}-contained${(d.filename.match(/\.[^.]+$/) || [".png"])[0]}`;
  $("contain-compare").value = 100;
  $("contain-compare").closest(".compare").hidden = !contained.before;
  $("contain-result").hidden = false;
  drawContained();
}

function regionLayer(mask) {
  // The region (a grey PNG, white = changed) as a layer that dims the picture outside it, and its box {x, y, w, h}.
  const { c, ctx, d } = pixelsOf(mask);
  let x0 = c.width, y0 = c.height, x1 = -1, y1 = -1;
  for (let i = 0; i < d.data.length; i += 4) {
    const v = d.data[i];
    if (v > 0) {
      const x = (i / 4) % c.width, y = Math.floor(i / 4 / c.width);
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
    d.data[i] = 0; d.data[i + 1] = 0; d.data[i + 2] = 0; d.data[i + 3] = (255 - v) * 0.55;  // outside dimmed
  }
  ctx.putImageData(d, 0, 0);
  const box = x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
  return { layer: c, box };
}

function containSaid(d, box) {
  // What the other app did, in words: its size, zoom, shift, turn and colours, then what Lasso kept.
  const a = d.alignment, parts = [];
  const [ew, eh] = a.edited_size, [ow, oh] = a.original_size;
  if (ew !== ow || eh !== oh) parts.push(`answered at ${ew}\u00d7${eh} instead of your photo's ${ow}\u00d7${oh}`);
  const zoom = (a.scale - 1) * 100;
  if (Math.abs(zoom) >= 0.1) parts.push(`zoomed ${zoom > 0 ? "in" : "out"} ${Math.abs(zoom).toFixed(1)}%`);
  const px = (v) => `${Math.max(1, Math.round(Math.abs(v)))} px`;
  const [dx, dy] = a.shift, moves = [];
  if (Math.abs(dx) >= 0.5) moves.push(`${px(dx)} ${dx > 0 ? "right" : "left"}`);
  if (Math.abs(dy) >= 0.5) moves.push(`${px(dy)} ${dy > 0 ? "down" : "up"}`);
  if (moves.length) parts.push(`shifted ${moves.join(" and ")}`);
  if (Math.abs(a.rotation) >= 0.05) {
    parts.push(`turned ${Math.abs(a.rotation).toFixed(1)}\u00b0 ${a.rotation > 0 ? "anticlockwise" : "clockwise"}`);
  }
  const colour = colourWords(d.colour);
  if (colour) parts.push(colour);
  const did = !parts.length ? "The other app left the picture in place"
    : `The other app ${parts.length > 1 ? `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}` : parts[0]}`;
  const size = box ? `a ${box.w}\u00d7${box.h} region` : "its region";
  const where = d.region_from === "mask" ? " inside your mask" : "";
  const kept = d.preservation && !d.preservation.identical_outside
    ? "but some pixels outside it differ from your photo (see below)"
    : "and put every other pixel back";
  return `${did}. Lasso kept its change to ${size}${where} (${d.region_px.toLocaleString("en-US")} pixels) ${kept}.`;
}

function colourWords(c) {
  // The colour drift in words, read at mid-grey (EDITED = gain * ORIGINAL + offset per channel); null when none.
  const moved = c.gain.map((g, k) => 128 * (g - 1) + c.offset[k]);
  if (Math.max(...moved.map(Math.abs)) < 1) return null;
  const warm = moved[0] - moved[2], mean = (moved[0] + moved[1] + moved[2]) / 3;
  if (warm > 3) return "warmed the colours";
  if (warm < -3) return "cooled the colours";
  if (Math.abs(mean) > 3) return mean > 0 ? "brightened the picture" : "darkened the picture";
  return "shifted the colours slightly";
}

function drawContained() {
  const img = contained.after;
  if (!img) return;
  const canvas = $("contain-canvas");
  const fit = Math.min(1, 1400 / Math.max(img.naturalWidth, img.naturalHeight));
  canvas.width = Math.max(1, Math.round(img.naturalWidth * fit));
  canvas.height = Math.max(1, Math.round(img.naturalHeight * fit));
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  drawBefore(ctx, canvas, contained.before, Number($("contain-compare").value) / 100);  // as the stage's slider
  const b = contained.box;
  if (!$("contain-show-region").checked || !b) return;
  ctx.drawImage(contained.layer, 0, 0, canvas.width, canvas.height);
  ctx.setLineDash([6, 4]);
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(b.x * fit - 3, b.y * fit - 3, b.w * fit + 6, b.h * fit + 6);
  ctx.setLineDash([]);
}

function wireContain() {
  $("contain-open").addEventListener("click", toggleContain);
  $("contain-form").addEventListener("submit", (e) => { e.preventDefault(); containEdit(); });
  $("contain-show-region").addEventListener("change", drawContained);
  $("contain-compare").addEventListener("input", drawContained);
}

// The model picker: the presets this server offers (its own first), and the chosen one's models,
// each with its licence and a mark where the Hub gates it (text only: ids are data).
let offeredPresets = [];

function renderModels(m) {
  offeredPresets = m.offered && m.offered.length ? m.offered
    : [{ preset: m.preset, models: Object.fromEntries(Object.entries(m.models || {}).map(
      ([stage, model]) => [stage, { model, terms: (m.licences || {})[stage] }])) }];
  const pick = $("preset");
  pick.replaceChildren();
  for (const p of offeredPresets) {
    const opt = document.createElement("option");
    opt.value = p.preset;
    opt.textContent = p.description ? `${p.preset}: ${p.description}` : p.preset;
    pick.append(opt);
  }
  $("preset-row").hidden = offeredPresets.length < 2;
  showModels();
}

function plainGrounders() {
  for (const opt of $("grounder").options) {
    if (PLAIN_GROUNDERS[opt.value]) { opt.title = opt.textContent; opt.textContent = PLAIN_GROUNDERS[opt.value]; }
  }
}

function showModels() {
  const chosen = offeredPresets.find((p) => p.preset === $("preset").value) || offeredPresets[0];
  const list = $("models");
  list.replaceChildren();
  for (const [stage, { model, terms }] of Object.entries((chosen && chosen.models) || {})) {
    const dt = document.createElement("dt");
    dt.textContent = PLAIN_STAGES[stage] ? `${PLAIN_STAGES[stage]} (${stage})` : stage;
    const dd = document.createElement("dd");
    dd.textContent = model;
    const note = document.createElement("span");
    note.className = "licence";
    note.textContent = terms ? ` ${terms.licence}${terms.gated ? " (gated: accepted on its Hub page)" : ""}` : "";
    dd.append(note);
    list.append(dt, dd);
  }
}

async function init() {
  wire();
  wireContain();
  plainGrounders();
  setHint();
  refreshButtons();
  try {
    const m = await api("GET", "/v1/models");
    $("server").textContent = `preset ${m.preset}` + (m.loaded.length ? "" : " (models load on first use)");
    if (m.max_upload_mb) $("limit").textContent = m.max_upload_mb;
    renderModels(m);
  } catch (e) { showError(e); }
  const asked = new URLSearchParams(location.hash.slice(1)).get("session");
  if (asked) await reopen(asked); else renderRecent();
}

init();
