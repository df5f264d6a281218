// The rater's task page (templates/rater/task.html): socket messages in, trials on screen,
// answers out, and what each server error does.

import { measureRefresh } from "./frames.js";
import { blockIntro, element, hidePanel, showPanel } from "./rater_panels.js";
import { RaterSocket } from "./rater_socket.js";
import {
  feedbackOver,
  setConnection,
  setProgress,
  showFeedback,
  showNotice,
} from "./rater_status.js";
import { backoffDelay, websocketUrl } from "./socket.js";
import { preloadTrial, runTrial } from "./trial_runner.js";

// Without feedback an untimed image would replace the previous one in the very next frame,
// and the rater might not see that it changed.
const MIN_GAP_MS = 300;

const ERROR_TEXT = {
  server_error: "The server had a problem; trying again.",
  rate_limited: "Too many messages in a short time; reconnecting.",
  not_current_trial: "The server was expecting another image; the task continues.",
  not_your_trial: "The server did not recognise that image; the task continues.",
  hello_first: "The connection was out of step; the task continues.",
};
// Outcomes, not hiccups: the session cannot go on, the done page says why.
const SESSION_ENDING_ERRORS = new Set(["session_over", "study_closed"]);

const data = JSON.parse(document.getElementById("rater-data").textContent);
const $ = (id) => document.getElementById(id);
const ui = {
  stage: $("stage"),
  stageItems: $("stage-items"),
  countdown: $("countdown"),
  status: $("status"),
  prompt: $("prompt"),
  promptNote: $("prompt-note"),
  fakeButton: $("answer-fake"),
  realButton: $("answer-real"),
  keyFake: $("key-fake"),
  keyReal: $("key-real"),
};

const state = {
  settings: { feedback: true, countdown_ms: 500, keys: { fake: "f", real: "j" } },
  refreshMs: null,
  current: null,
  lastAnswerAt: -Infinity,
  qualification: null,
  over: false,
  serverErrors: 0,
};
let socket = null;

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
      const intro = { keys: state.settings.keys, qualification: state.qualification };
      await blockIntro(trial, intro, signal);
    }
    const gap = MIN_GAP_MS - (performance.now() - state.lastAnswerAt);
    if (gap > 0) await abortable(sleep(gap), signal);
    const result = await runTrial(trial, {
      ui,
      preload,
      settings: state.settings,
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

function onError(message) {
  if (state.over) return;
  // Followed by a close (4409), which onStatus handles.
  if (message.code === "superseded") return;
  if (SESSION_ENDING_ERRORS.has(message.code)) {
    showPanel({
      title: message.code === "study_closed" ? "This study has closed" : "The session has ended",
      body: [element("p", "One moment…")],
    });
    leave(null);
    return;
  }
  if (message.code === "not_ready") {
    showPanel({
      title: "The study is not ready to continue",
      body: [element("p", "Your answers are saved. Please try again in a few minutes.")],
      button: "Try again",
      onButton: () => {
        hidePanel();
        socket.reconnectNow();
      },
    });
    return;
  }
  if (message.code === "server_error") {
    // Nothing was stored; a fresh connection says hello and resends the held answer.
    state.serverErrors += 1;
    setTimeout(() => socket.reconnectNow(), backoffDelay(state.serverErrors));
  }
  const text = ERROR_TEXT[message.code] || "The server could not use the last message.";
  showNotice(`${text} (${message.code || "error"})`);
}

function onMessage(message) {
  switch (message.type) {
    case "session":
      if (message.settings) {
        state.settings = { ...state.settings, ...message.settings };
        state.settings.keys = { fake: "f", real: "j", ...(message.settings.keys || {}) };
        ui.keyFake.textContent = state.settings.keys.fake.toUpperCase();
        ui.keyReal.textContent = state.settings.keys.real.toUpperCase();
      }
      if (!state.current) hidePanel();
      setProgress(message);
      break;
    case "trial":
      state.serverErrors = 0;
      onTrial(message);
      break;
    case "feedback":
      if (state.settings.feedback !== false) showFeedback(Boolean(message.correct));
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
      onError(message);
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
  if (detail === "superseded") {
    showPanel({
      title: "The task continues in another window",
      body: [element("p", "You opened it again elsewhere. You can carry on there, or here.")],
      button: "Continue here",
      onButton: () => {
        hidePanel();
        socket.restart();
      },
    });
    return;
  }
  state.over = true;
  showPanel({
    title: "Your session was not found",
    body: [element("p", "Please open the study link you were given again.")],
  });
}

async function start() {
  showPanel({
    title: "Getting ready",
    body: [element("p", "Measuring your screen. Please keep this tab in front.")],
  });
  state.refreshMs = await measureRefresh();
  socket = new RaterSocket(websocketUrl(data.ws_url), {
    hello: () => ({
      type: "hello",
      refresh_ms: Math.round(state.refreshMs * 100) / 100,
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
  socket.connect();
}

start();
