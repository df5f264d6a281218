// The landing page's device check, before consent (docs/raters.md, "Devices and display"): a
// desktop-class pointer, a window that holds the images at their display size, and a steady,
// measurable refresh rate. The Start button stays disabled while it runs; a device that fails
// goes to the device page, which says why. The results travel as the start form's hidden fields
// (the server refuses a start they say failed); the requirements are the server's
// (experiments/rating/display.py), sent in the page's "device-check" data.

import { windowNeeded } from "./display.js";
import { refreshMeasurement, steadyShare } from "./frames.js";

const data = JSON.parse(document.getElementById("device-check").textContent);
const need = data.requirements;
const form = document.getElementById("consent-form");
const start = document.getElementById("start");
const status = document.getElementById("device-status");
const statusText = document.getElementById("device-status-text");

// A page load's first frames can stutter (fonts, layout): a refresh rate that looks unsteady is
// measured once more before the device is turned away.
const REFRESH_ATTEMPTS = 2;

function say(state, text) {
  status.dataset.state = state;
  statusText.textContent = text;
}

function visible() {
  if (document.visibilityState === "visible") return Promise.resolve();
  say("checking", "Checking your screen… keep this tab in front.");
  return new Promise((resolve) => {
    const onChange = () => {
      if (document.visibilityState !== "visible") return;
      document.removeEventListener("visibilitychange", onChange);
      resolve();
    };
    document.addEventListener("visibilitychange", onChange);
  });
}

function pointer() {
  return {
    fine: window.matchMedia("(any-pointer: fine)").matches,
    hover: window.matchMedia("(any-hover: hover)").matches,
  };
}

function windowSize() {
  const needed = windowNeeded(data.display);
  return {
    window: [window.innerWidth, window.innerHeight],
    needed: [needed.width, needed.height],
  };
}

async function refresh() {
  let result = null;
  for (let attempt = 0; attempt < REFRESH_ATTEMPTS; attempt += 1) {
    await visible();
    const { refreshMs, intervals } = await refreshMeasurement({
      frames: need.refresh_frames,
      timeoutMs: 4000,
    });
    result = { refreshMs, steady: steadyShare(intervals, need.refresh_tolerance) };
    if (refreshPasses(result)) break;
  }
  return result;
}

function refreshPasses({ refreshMs, steady }) {
  if (refreshMs === null) return false;
  const hz = 1000 / refreshMs;
  return (
    hz >= need.refresh_hz_min && hz <= need.refresh_hz_max && steady >= need.refresh_steady_share
  );
}

// The server reads exactly these (experiments.rating.display.DEVICE_FIELDS).
function fields(results) {
  const flag = (value) => (value ? "1" : "0");
  const { refreshMs } = results.refresh;
  return {
    device_fine_pointer: flag(results.pointer.fine),
    device_hover: flag(results.pointer.hover),
    device_window: results.size.window.join("x"),
    device_needed: results.size.needed.join("x"),
    device_dpr: String(window.devicePixelRatio || 1),
    device_refresh_ms: refreshMs === null ? "" : refreshMs.toFixed(2),
    device_refresh_steady: results.refresh.steady.toFixed(3),
  };
}

function passes(results) {
  const [width, height] = results.size.window;
  const [neededWidth, neededHeight] = results.size.needed;
  return (
    (!need.fine_pointer || results.pointer.fine) &&
    (!need.hover || results.pointer.hover) &&
    width >= neededWidth &&
    height >= neededHeight &&
    refreshPasses(results.refresh)
  );
}

function fillForm(values) {
  for (const [name, value] of Object.entries(values)) {
    let input = form.elements.namedItem(name);
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.append(input);
    }
    input.value = value;
  }
}

async function check() {
  start.disabled = true;
  const results = { pointer: pointer(), refresh: await refresh() };
  // Measured last: the window may have changed while the frames were counted.
  results.size = windowSize();
  const values = fields(results);
  const passed = passes(results);
  window.hypeDeviceCheck = { results, values, passed };
  if (!passed) {
    // device_url ends with "?" or with the rater's platform ids.
    const joiner = data.device_url.endsWith("?") ? "" : "&";
    window.location.replace(`${data.device_url}${joiner}${new URLSearchParams(values)}`);
    return;
  }
  fillForm(values);
  // A window made smaller after the check is measured again when the form is sent.
  window.addEventListener("resize", () => fillForm(fields({ ...results, size: windowSize() })));
  say("ready", "Your screen is ready.");
  start.disabled = false;
}

check();
