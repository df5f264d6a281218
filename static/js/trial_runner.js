// One trial on screen: preload and decode, countdown, frame-counted image and masks, the answer.

import { alignToDevicePixels } from "./display.js";
import {
  countdownSteps,
  frameSequence,
  framesFor,
  hide,
  runTimeline,
  show,
  timeOf,
  watchVisibility,
} from "./frames.js";

const FETCH_ATTEMPTS = 3;
// Masks repeat from trial to trial; their bytes are kept (not their object URLs, which are
// made and revoked per trial).
const maskBlobs = new Map();
const MASK_CACHE_LIMIT = 64;

class LoadError extends Error {
  constructor(url, status) {
    super(status ? `loading ${url} answered ${status}` : `loading ${url} failed`);
    this.name = "LoadError";
    this.status = status;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function fetchBlob(url) {
  let lastError = null;
  for (let attempt = 0; attempt < FETCH_ATTEMPTS; attempt += 1) {
    if (attempt > 0) await sleep(300 * 3 ** (attempt - 1));
    let response;
    try {
      response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    } catch {
      lastError = new LoadError(url, null);
      continue;
    }
    if (response.ok) return response.blob();
    lastError = new LoadError(url, response.status);
    // A 4xx will not change on retry (410: the image was already presented).
    if (response.status < 500) break;
  }
  throw lastError;
}

function maskBlob(url) {
  if (!maskBlobs.has(url)) {
    if (maskBlobs.size >= MASK_CACHE_LIMIT) maskBlobs.delete(maskBlobs.keys().next().value);
    const loading = fetchBlob(url);
    loading.catch(() => maskBlobs.delete(url));
    maskBlobs.set(url, loading);
  }
  return maskBlobs.get(url);
}

function stageImage(container, role) {
  const img = document.createElement("img");
  img.className = `stage-item stage-${role}`;
  img.alt = "";
  img.draggable = false;
  hide(img);
  container.append(img);
  return img;
}

/**
 * Starts loading a trial's image and masks into hidden <img> elements of `container`, each
 * fetched, turned into an object URL and decoded, so that showing it costs no work in the frame
 * that shows it. Call as soon as the trial message arrives; release() when the trial is over.
 */
export function preloadTrial(trial, container) {
  const urls = [];
  const image = stageImage(container, "image");
  const masks = (trial.timed ? trial.masks || [] : []).map((mask) => ({
    element: stageImage(container, "mask"),
    frames: mask.frames,
    url: mask.url,
  }));
  // Laid out now (hidden): its corner is put on a device pixel before it is ever shown.
  alignToDevicePixels(image);
  const state = { image, masks, isReady: false, error: null, released: false };

  const load = async (element, url, blobPromise) => {
    const blob = await blobPromise;
    if (state.released) return;
    const objectUrl = URL.createObjectURL(blob);
    urls.push(objectUrl);
    element.src = objectUrl;
    try {
      await element.decode();
    } catch {
      // An unreadable image is a load failure like a missing one, unless the trial was
      // dropped meanwhile (removing src rejects a pending decode).
      if (!state.released) throw new LoadError(url, null);
    }
  };

  state.ready = Promise.all([
    load(image, trial.image_url, fetchBlob(trial.image_url)),
    ...masks.map((mask) => load(mask.element, mask.url, maskBlob(mask.url))),
  ]).then(
    () => {
      state.isReady = !state.released;
    },
    (error) => {
      state.error = state.error || error;
      throw state.error;
    },
  );
  // The runner reads state.error; an unobserved rejection here is not a page error.
  state.ready.catch(() => {});

  state.release = () => {
    state.released = true;
    state.isReady = false;
    for (const element of [image, ...masks.map((mask) => mask.element)]) {
      element.removeAttribute("src");
      element.remove();
    }
    for (const url of urls.splice(0)) URL.revokeObjectURL(url);
  };
  return state;
}

function matchesKey(event, key) {
  if (!key) return false;
  const wanted = key.toLowerCase();
  // event.code keeps F and J where they are on keyboards whose letters differ (Cyrillic,
  // Greek...), so the keys do not move with the layout.
  return (event.key || "").toLowerCase() === wanted || event.code === `Key${wanted.toUpperCase()}`;
}

/**
 * Resolves with {choice, at} at the first F/J key press or button click whose timestamp is not
 * before `since` (keys pressed before the prompt appeared do not count); at is the event's
 * timestamp, on the same clock as the frame timestamps.
 */
export function waitForAnswer(ui, keys, since, signal) {
  return new Promise((resolve, reject) => {
    const cleanUp = () => {
      window.removeEventListener("keydown", onKey, true);
      ui.fakeButton.removeEventListener("click", onFake);
      ui.realButton.removeEventListener("click", onReal);
      signal?.removeEventListener("abort", onAbort);
    };
    const settle = (choice, event) => {
      if (event.timeStamp < since) return;
      cleanUp();
      resolve({ choice, at: event.timeStamp });
    };
    const onKey = (event) => {
      if (event.repeat || event.ctrlKey || event.altKey || event.metaKey) return;
      if (matchesKey(event, keys.fake)) {
        event.preventDefault();
        settle("fake", event);
      } else if (matchesKey(event, keys.real)) {
        event.preventDefault();
        settle("real", event);
      }
    };
    const onFake = (event) => settle("fake", event);
    const onReal = (event) => settle("real", event);
    const onAbort = () => {
      cleanUp();
      reject(signal.reason);
    };
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    window.addEventListener("keydown", onKey, true);
    ui.fakeButton.addEventListener("click", onFake);
    ui.realButton.addEventListener("click", onReal);
    signal?.addEventListener("abort", onAbort);
  });
}

function openPrompt(ui, { answerOnly }) {
  ui.promptNote.hidden = !answerOnly;
  ui.fakeButton.disabled = false;
  ui.realButton.disabled = false;
  ui.prompt.classList.add("is-open");
}

function closePrompt(ui) {
  ui.prompt.classList.remove("is-open");
  ui.fakeButton.disabled = true;
  ui.realButton.disabled = true;
  ui.promptNote.hidden = true;
  // A focused button would answer the next trial on Enter or Space.
  if (ui.prompt.contains(document.activeElement)) document.activeElement.blur();
}

function showStatus(ui, text) {
  ui.status.textContent = text;
  show(ui.status);
}

const round2 = (value) => (value === null ? null : Math.round(value * 100) / 100);

// Ends a timeline and the answer wait when the trial is abandoned (the server moved on).
function cancellable(timeline, signal) {
  if (!signal) return timeline.done;
  if (signal.aborted) timeline.cancel();
  else signal.addEventListener("abort", () => timeline.cancel(), { once: true });
  return timeline.done;
}

/**
 * Runs one trial message (docs/protocol.md) to its answer and resolves with the measured
 * fields of the answer message: {choice, rt_ms, shown_ms, mask_ms, refresh_ms, page_hidden}.
 *
 * ui: {stage, countdown, status, prompt, promptNote, fakeButton, realButton}
 * preload: from preloadTrial (null for answer_only trials)
 * settings: {countdown_ms, keys}; onPresented(): called in the frame that shows the image.
 */
export async function runTrial(trial, { ui, preload, settings, refreshMs, onPresented, signal }) {
  const visibility = watchVisibility();
  // The server's keys (its session message): a default here would be a second owner.
  const { keys } = settings;
  const gate = () => {
    if (preload.error) throw preload.error;
    return preload.isReady;
  };
  const hold = () => {
    hide(ui.countdown);
    showStatus(ui, "Loading the image…");
  };
  const measured = (answer, from, shown, masks) => ({
    choice: answer.choice,
    rt_ms: round2(answer.at - from),
    shown_ms: round2(shown),
    mask_ms: round2(masks),
    refresh_ms: round2(refreshMs),
    page_hidden: visibility.hidden,
  });

  try {
    if (trial.answer_only) {
      const timeline = runTimeline([
        { name: "prompt", enter: () => openPrompt(ui, { answerOnly: true }) },
      ]);
      const shown = await cancellable(timeline, signal);
      const answer = await waitForAnswer(ui, keys, shown.end, signal);
      return measured(answer, shown.end, null, null);
    }

    if (!trial.timed) {
      // No time limit: the image stays, with the prompt under it, until the answer.
      const timeline = runTimeline(
        [
          {
            name: "image",
            gate,
            hold,
            enter() {
              hide(ui.status);
              show(preload.image);
              openPrompt(ui, { answerOnly: false });
              onPresented?.();
            },
          },
        ],
        { refreshMs },
      );
      const shown = await cancellable(timeline, signal);
      const answer = await waitForAnswer(ui, keys, shown.end, signal);
      return measured(answer, timeOf(shown, "image"), null, null);
    }

    const before =
      trial.countdown && settings.countdown_ms > 0
        ? countdownSteps(ui.countdown, settings.countdown_ms)
        : [];
    const sequence = frameSequence({
      image: preload.image,
      frames: trial.frames > 0 ? trial.frames : framesFor(trial.exposure_ms, refreshMs),
      masks: preload.masks,
      refreshMs,
      before,
      gate,
      hold,
      onShow() {
        hide(ui.status);
        onPresented?.();
      },
      finish: () => openPrompt(ui, { answerOnly: false }),
    });
    const shown = await cancellable(sequence, signal);
    const answer = await waitForAnswer(ui, keys, shown.end, signal);
    return measured(answer, shown.end, shown.shown_ms, shown.mask_ms);
  } finally {
    visibility.stop();
    closePrompt(ui);
    hide(ui.countdown);
    hide(ui.status);
    if (preload) {
      hide(preload.image);
      for (const mask of preload.masks) hide(mask.element);
    }
  }
}
