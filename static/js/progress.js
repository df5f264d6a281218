// The study page's live progress panel: starts from the numbers the server rendered
// (json_script "progress-data"), then shows every state the progress websocket sends,
// reconnecting with backoff after a drop. One job: keep the panel current.

import { backoffDelay, websocketUrl } from "./socket.js";

// The server closes with this when the viewer may not see the study (or it does not exist):
// retrying cannot help.
const CLOSE_NOT_FOUND = 4404;
const LIVE_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  unavailable: "live updates unavailable · reload the page",
};
const MODEL_FIELDS = [
  "in_progress",
  "failed_qualification",
  "gone",
  "answers",
  "answers_last_minute",
];

function cell(text, className = "") {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function modelRow(row) {
  const tr = document.createElement("tr");
  const gone = row.abandoned + row.excluded;
  const values = { ...row, gone };
  if (row.name === null) {
    tr.dataset.model = "";
    tr.className = "unassigned";
    const name = cell("No model yet ");
    const note = document.createElement("span");
    note.className = "muted";
    note.textContent = "(consented or qualifying)";
    name.append(note);
    tr.append(name, cell("—", "muted"));
  } else {
    tr.dataset.model = row.name;
    const done = document.createElement("td");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = `${Math.min(100, Math.round((100 * row.completed) / (row.target || 1)))}%`;
    bar.append(fill);
    const count = document.createElement("span");
    count.dataset.field = "completed";
    count.textContent = String(row.completed);
    done.append(bar, " ", count, ` / ${row.target}`);
    tr.append(cell(row.name), done);
  }
  for (const field of MODEL_FIELDS) {
    const td = cell(String(values[field]), "num");
    td.dataset.field = field;
    tr.append(td);
  }
  return tr;
}

function sinceText(iso, now = Date.now()) {
  if (!iso) return "none yet";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  return new Date(iso).toLocaleString();
}

class ProgressPanel {
  constructor(panel) {
    this.panel = panel;
    this.indicator = panel.querySelector("#progress-live");
    this.lastAnswer = panel.querySelector("#progress-last-answer");
    this.progress = null;
  }

  render(progress) {
    if (!progress || typeof progress !== "object" || !progress.total) return;
    this.progress = progress;
    for (const element of this.panel.querySelectorAll("dl [data-progress]")) {
      const value = progress.total[element.dataset.progress];
      if (value !== undefined) element.textContent = String(value);
    }
    const rows = [...progress.models];
    if (progress.unassigned) rows.push(progress.unassigned);
    this.panel.querySelector("#progress-models").replaceChildren(...rows.map(modelRow));
    this.lastAnswer.dateTime = progress.total.last_answer_at || "";
    this.tick();
  }

  // The "12 s ago" text ages between messages.
  tick() {
    if (this.progress) this.lastAnswer.textContent = sinceText(this.progress.total.last_answer_at);
  }

  status(state) {
    this.indicator.dataset.liveState = state;
    this.indicator.textContent = LIVE_TEXT[state];
  }
}

class ProgressSocket {
  constructor(url, { onProgress, onStatus }) {
    this.url = url;
    this.onProgress = onProgress;
    this.onStatus = onStatus;
    this.attempt = 0;
    this.timer = null;
    this.ws = null;
    this.stopped = false;
    window.addEventListener("online", () => {
      if (this.timer !== null) this.connect();
    });
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.onStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && message.type === "progress") {
        // A state arrived: the connection works, so the next drop backs off from the start.
        this.attempt = 0;
        this.onStatus("live");
        this.onProgress(message);
      }
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (event.code === CLOSE_NOT_FOUND) {
        this.stopped = true;
        this.onStatus("unavailable");
        return;
      }
      this.scheduleReconnect();
    });
    // An error is followed by a close event, which decides what happens next.
    ws.addEventListener("error", () => {});
  }

  scheduleReconnect() {
    if (this.stopped || this.timer !== null) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.onStatus("reconnecting");
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}

function start(element) {
  const panel = new ProgressPanel(element);
  const data = document.getElementById("progress-data");
  panel.render(data ? JSON.parse(data.textContent) : null);
  const socket = new ProgressSocket(websocketUrl(element.dataset.wsPath), {
    onProgress: (progress) => panel.render(progress),
    onStatus: (state) => panel.status(state),
  });
  socket.connect();
  setInterval(() => panel.tick(), 5000);
}

const element = document.getElementById("progress-panel");
if (element) start(element);
