// The rater's task page (templates/rater/task.html): reads the page's data, runs each trial the
// server sends and sends its answer back, and leaves for the done page when the session ends.

import { watchDisplay } from "./display.js";
import { FALLBACK_REFRESH_MS, refreshMeasurement } from "./frames.js";
import { ui } from "./rater_elements.js";
import { ErrorPolicy } from "./rater_errors.js";
import { blockIntro, element, hidePanel, showPanel } from "./rater_panels.js";
import { applySettings, currentSettings } from "./rater_settings.js";
import { RaterSocket } from "./rater_socket.js";
import {
  feedbackOver,
  setConnection,
  setProgress,
  showFeedback,
  showNotice,
} from "./rater_status.js";
import { websocketUrl } from "./socket.js";
import { preloadTrial, runTrial } from "./trial_runner.js";

// Without feedback an untimed image would replace the previous one in the very next frame,
// and the rater might not see that it changed.
const MIN_GAP_MS = 300;

const data = JSON.parse(document.getElementById("rater-data").textContent);
const state = {
  refreshMs: null,
  current: null,
  lastAnswerAt: -Infinity,
  qualification: null,
  over: false,
};
let socket = null;
let errors = null;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function abortable(promise, signal) {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

// ---- trials

async function runOne(trial, signal) {
  const preload = trial.answer_only ? null : preloadTrial(trial, ui.stageItems);
  try {
    setProgress({ phase: trial.phase, block: trial.block });
    // The feedback of the previous answer arrives just before this trial: let it be read.
    await abortable(feedbackOver(), signal);
    hidePanel();
    if (trial.block && trial.block.first && !trial.answer_only) {
      const intro = { keys: currentSettings().keys, qualification: state.qualification };
      await blockIntro(trial, intro, signal);
    }
    const gap = MIN_GAP_MS - (performance.now() - state.lastAnswerAt);
    if (gap > 0) await abortable(sleep(gap), signal);
    const result = await runTrial(trial, {
      ui,
      preload,
      settings: currentSettings(),
      refreshMs: state.refreshMs,
      onPresented: () => socket.presented(trial.trial),
      signal,
    });
    state.lastAnswerAt = performance.now();
    socket.answer({ trial: trial.trial, ...result });
  } catch (error) {
    if (error && error.name === "AbortError") return;
    if (error && error.name === "LoadError") {
      showPanel({
        title: "The image could not be loaded",
        body: [element("p", "Please check your connection and reload the page to carry on.")],
        button: "Reload",
        onButton: () => window.location.reload(),
      });
      return;
    }
    console.error(error);
    showNotice("Something went wrong on this page. Reload it if the task does not continue.");
  } finally {
    preload?.release();
  }
}

function onTrial(trial) {
  if (state.over) return;
  // A reconnect re-sends the current trial: keep running it (or keep its answer, which the
  // socket has just resent) rather than show it twice.
  if (state.current && state.current.id === trial.trial) return;
  if (socket.hasAnswered(trial.trial)) return;
  // The server is authoritative: if it asks for another trial, that one is the current one.
  if (state.current) state.current.abort.abort();
  const current = { id: trial.trial, abort: new AbortController() };
  state.current = current;
  runOne(trial, current.abort.signal).finally(() => {
    if (state.current === current) state.current = null;
  });
}

// ---- the end

async function leave(redirect) {
  state.over = true;
  state.current?.abort.abort();
  socket.stop();
  await feedbackOver();
  window.location.assign(redirect || data.done_url);
}

function onFinished(message) {
  showPanel({
    title: message.outcome === "completed" ? "All done, thank you!" : "The session has ended",
    body: [element("p", "One moment…")],
  });
  leave(message.redirect);
}

// ---- the socket

function onMessage(message) {
  switch (message.type) {
    case "session":
      if (message.settings) applySettings(message.settings);
      if (!state.current) hidePanel();
      setProgress(message);
      break;
    case "trial":
      errors.trialArrived();
      onTrial(message);
      break;
    case "feedback":
      // The server decides which answers get feedback (the study's setting): show what comes.
      showFeedback(Boolean(message.correct));
      break;
    case "progress":
      setProgress(message);
      break;
    case "qualification":
      state.qualification = message;
      break;
    case "finished":
      onFinished(message);
      break;
    case "error":
      if (!state.over) errors.onError(message);
      break;
    default:
      // ack: the socket already dropped the answer it acknowledges.
      break;
  }
}

function onStatus(status, detail) {
  setConnection(status);
  if (status !== "fatal") return;
  state.current?.abort.abort();
  if (errors.onFatalClose(detail)) state.over = true;
}

async function start() {
  watchDisplay(data.settings.display, { container: ui.stageItems });
  showPanel({
    title: "Getting ready",
    body: [element("p", "Measuring your screen. Please keep this tab in front.")],
  });
  // Not measurable (a background tab, too few frames): the frames are counted at 60 Hz's
  // interval, and hello says that it was not measured (null) rather than pass that off as one.
  const { refreshMs } = await refreshMeasurement();
  state.refreshMs = refreshMs ?? FALLBACK_REFRESH_MS;
  socket = new RaterSocket(websocketUrl(data.ws_url), {
    hello: () => ({
      type: "hello",
      refresh_ms: refreshMs === null ? null : Math.round(refreshMs * 100) / 100,
      screen: {
        width: window.screen.width,
        height: window.screen.height,
        dpr: window.devicePixelRatio || 1,
      },
    }),
    onMessage,
    onStatus,
    storageKey: `hype:answer:${data.ws_url}`,
  });
  errors = new ErrorPolicy({ socket, endSession: leave });
  socket.connect();
}

start();
