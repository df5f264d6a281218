// Display-timing harness (static/bench/timing.html): frame-counted (rAF) and setTimeout
// displays of generated images, both measured by one independent requestAnimationFrame observer.
//
// The observer records the timestamp of the first frame in which the image is visible and of
// the first frame in which it is hidden again; their difference is its measured on-screen time,
// whichever method showed it. Results are exposed on window.hypeTiming for Playwright.

import { frameSequence, framesFor, hide, measureRefresh, nextFrame, show } from "./frames.js";

const GAP_FRAMES = 6;
const stage = document.getElementById("stage");

// Images made here, so that the page needs no network and no server.
async function makeImages(count, size = 384) {
  const images = [];
  for (let i = 0; i < count; i += 1) {
    const canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    const context = canvas.getContext("2d");
    const hue = (i * 137) % 360;
    const gradient = context.createLinearGradient(0, 0, size, size);
    gradient.addColorStop(0, `hsl(${hue} 70% 45%)`);
    gradient.addColorStop(1, `hsl(${(hue + 90) % 360} 70% 70%)`);
    context.fillStyle = gradient;
    context.fillRect(0, 0, size, size);
    for (let k = 0; k < 24; k += 1) {
      context.fillStyle = `hsl(${(hue + k * 23) % 360} 60% ${30 + ((k * 7) % 50)}% / 0.55)`;
      context.beginPath();
      const x = (Math.sin(i * 3.1 + k) * 0.4 + 0.5) * size;
      const y = (Math.cos(i * 1.7 + k * 2.3) * 0.4 + 0.5) * size;
      context.arc(x, y, size * (0.04 + ((k * 13) % 10) / 80), 0, 2 * Math.PI);
      context.fill();
    }
    context.fillStyle = "#fff";
    context.font = `bold ${size / 6}px system-ui, sans-serif`;
    context.fillText(`#${i + 1}`, size * 0.06, size * 0.2);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const img = document.createElement("img");
    img.className = "harness-image";
    img.alt = "";
    hide(img);
    img.src = URL.createObjectURL(blob);
    await img.decode();
    stage.append(img);
    images.push(img);
  }
  return images;
}

// ---- the observer

const observer = { target: null, shownAt: null, hiddenAt: null, starts: [] };

function observe(t) {
  const { target } = observer;
  if (target) {
    const visible = target.style.visibility === "visible";
    if (visible && observer.shownAt === null) observer.shownAt = t;
    if (!visible && observer.shownAt !== null && observer.hiddenAt === null) observer.hiddenAt = t;
  }
  // Displays start here, before the observer asks for its next frame. A frame-counted
  // display then requests its callbacks before the observer in every later frame, so the
  // observer sees each of its changes in the frame that paints it (as it does for changes
  // made by timers, which run between frames).
  for (const start of observer.starts.splice(0)) start(t);
  requestAnimationFrame(observe);
}

function startInObserverFrame(start) {
  return new Promise((resolve) => {
    observer.starts.push((t) => {
      start(t);
      resolve();
    });
  });
}

// ---- one display by each method

function displayWithFrames(img, frames, refreshMs) {
  return frameSequence({ image: img, frames, refreshMs }).done.then((result) => result.shown_ms);
}

// The naive way: show, then setTimeout(hide, ms). A real page starts a trial on a key press or
// a network message, at any phase of the refresh cycle, hence the random start within a frame.
function displayWithTimeout(img, requestedMs, refreshMs) {
  setTimeout(
    () => {
      show(img);
      setTimeout(() => hide(img), requestedMs);
    },
    Math.random() * refreshMs,
  );
  return Promise.resolve(null);
}

async function displayOnce(method, requestedMs, img, refreshMs) {
  const frames = framesFor(requestedMs, refreshMs);
  for (let i = 0; i < GAP_FRAMES; i += 1) await nextFrame();
  observer.target = img;
  observer.shownAt = null;
  observer.hiddenAt = null;
  let recorded = Promise.resolve(null);
  await startInObserverFrame(() => {
    recorded =
      method === "raf"
        ? displayWithFrames(img, frames, refreshMs)
        : displayWithTimeout(img, requestedMs, refreshMs);
  });
  while (observer.hiddenAt === null) await nextFrame();
  const shownMs = observer.hiddenAt - observer.shownAt;
  observer.target = null;
  const recordedMs = await recorded;
  return {
    method,
    requested_ms: requestedMs,
    frames,
    refresh_ms: refreshMs,
    shown_ms: Math.round(shownMs * 1000) / 1000,
    recorded_ms: recordedMs === null ? null : Math.round(recordedMs * 1000) / 1000,
    frames_shown: Math.round(shownMs / refreshMs),
  };
}

// ---- runs

// Small seeded generator, so that a run's order can be repeated.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled(items, random) {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

export function summarise(results) {
  const byMethod = {};
  for (const result of results) (byMethod[result.method] ||= []).push(result);
  const summary = {};
  for (const [method, rows] of Object.entries(byMethod)) {
    const stats = (values) => {
      const sorted = values.sort((a, b) => a - b);
      return { median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), max: sorted.at(-1) };
    };
    summary[method] = {
      n: rows.length,
      vs_requested: stats(rows.map((r) => Math.abs(r.shown_ms - r.requested_ms))),
      vs_frames: stats(rows.map((r) => Math.abs(r.shown_ms - r.frames * r.refresh_ms))),
    };
  }
  return summary;
}

const ready = (async () => {
  requestAnimationFrame(observe);
  const refreshMs = await measureRefresh({ frames: 120 });
  const images = await makeImages(6);
  return { refreshMs, images };
})();

// A page with other work to do (socket messages, garbage collection, a busy extension):
// tasks of up to busyMs, back to back with short pauses, which delay timers and callbacks.
function busyMainThread(busyMs) {
  if (!(busyMs > 0)) return () => {};
  const timer = setInterval(() => {
    const until = performance.now() + Math.random() * busyMs;
    while (performance.now() < until) {
      // Spin: the point is to hold the main thread.
    }
  }, 4);
  return () => clearInterval(timer);
}

/**
 * Runs `repeats` displays of every exposure by every method, in a shuffled order (so that both
 * methods meet the same conditions), and resolves with one result per display.
 */
async function run({
  methods = ["raf"],
  exposures = [100, 250, 500, 750, 1000],
  repeats = 10,
  seed = 1,
  busyMs = 0,
  onResult = null,
} = {}) {
  const { refreshMs, images } = await ready;
  const random = mulberry32(seed);
  const plan = [];
  for (let r = 0; r < repeats; r += 1) {
    for (const method of methods) for (const ms of exposures) plan.push({ method, ms });
  }
  const results = [];
  const stopBusy = busyMainThread(busyMs);
  try {
    for (const [i, { method, ms }] of shuffled(plan, random).entries()) {
      const result = await displayOnce(method, ms, images[i % images.length], refreshMs);
      results.push({ ...result, busy_ms: busyMs });
      onResult?.(result, i + 1, plan.length);
    }
  } finally {
    stopBusy();
  }
  window.hypeTimingResults = results;
  return results;
}

// ---- the page's own controls (the page also works without Playwright)

const form = document.getElementById("controls");
const statusLine = document.getElementById("run-status");
const summaryBody = document.getElementById("summary-body");

function fmt(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1);
}

function showSummary(results) {
  summaryBody.replaceChildren();
  for (const [method, s] of Object.entries(summarise(results))) {
    const row = document.createElement("tr");
    const cells = [
      method === "raf" ? "rAF, frame-counted" : "setTimeout",
      String(s.n),
      fmt(s.vs_requested.median),
      fmt(s.vs_requested.p95),
      fmt(s.vs_requested.max),
      fmt(s.vs_frames.median),
      fmt(s.vs_frames.p95),
      fmt(s.vs_frames.max),
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    summaryBody.append(row);
  }
}

async function runFromForm() {
  const fields = new FormData(form);
  const methods = fields.getAll("method");
  const exposures = String(fields.get("exposures"))
    .split(/[\s,]+/)
    .map(Number)
    .filter((ms) => ms > 0);
  const repeats = Math.max(1, Number(fields.get("repeats")) || 1);
  const busyMs = Math.max(0, Number(fields.get("busy")) || 0);
  form.querySelector("button").disabled = true;
  const results = await run({
    methods,
    exposures,
    repeats,
    busyMs,
    onResult: (_, done, total) => {
      statusLine.textContent = `Running: ${done} of ${total} displays`;
    },
  });
  statusLine.textContent = `Done: ${results.length} displays.`;
  showSummary(results);
  form.querySelector("button").disabled = false;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  runFromForm();
});

ready.then(({ refreshMs }) => {
  document.getElementById("refresh").textContent =
    `${refreshMs.toFixed(3)} ms (${(1000 / refreshMs).toFixed(2)} Hz)`;
  statusLine.textContent = "Ready.";
  if (new URLSearchParams(window.location.search).has("autorun")) runFromForm();
});

window.hypeTiming = { ready: ready.then(({ refreshMs }) => ({ refreshMs })), run, summarise };
