// What the rater is told around the trials: the progress bar, the connection indicator,
// short notices and the correct/incorrect feedback.

import { ui } from "./rater_elements.js";

const FEEDBACK_MS = 700;
const NOTICE_MS = 6000;

// What the label names; the phase comes from session and progress messages, the block from
// trials.
const where = { phase: null, block: null };
let noticeTimer = null;
let feedbackDone = Promise.resolve();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function phaseLabel() {
  if (where.phase === "qualification") return "Practice round";
  if (where.block && where.block.of > 0) return `Block ${where.block.number} of ${where.block.of}`;
  return where.phase === "task" ? "Main task" : "";
}

export function setProgress({ phase, block, done, total }) {
  if (phase) where.phase = phase;
  if (block) where.block = block;
  ui.progressLabel.textContent = phaseLabel();
  if (typeof done === "number" && typeof total === "number" && total > 0) {
    const percent = Math.min(100, Math.max(0, (100 * done) / total));
    ui.progressFill.style.width = `${percent}%`;
    ui.progressTrack.setAttribute("aria-valuenow", String(Math.round(percent)));
    ui.progressCount.textContent = `${done} / ${total}`;
  }
}

// status: RaterSocket's; only a connection being made is worth the rater's attention.
export function setConnection(status) {
  const text = {
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
  }[status];
  ui.connection.hidden = !text;
  ui.connection.textContent = text || "";
}

export function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    ui.notice.hidden = true;
  }, NOTICE_MS);
}

export function showFeedback(correct) {
  ui.feedback.textContent = correct ? "Correct" : "Incorrect";
  ui.feedback.className = `stage-feedback ${correct ? "is-correct" : "is-wrong"}`;
  ui.feedback.hidden = false;
  feedbackDone = sleep(FEEDBACK_MS).then(() => {
    ui.feedback.hidden = true;
  });
}

// Resolves once the last feedback has been on screen for its time, so it can be read.
export function feedbackOver() {
  return feedbackDone;
}
