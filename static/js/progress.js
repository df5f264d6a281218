// The study page's live progress panel: starts from the numbers the server rendered
// (json_script "progress-data"), then shows every state the progress websocket sends,
// reconnecting with backoff after a drop. One job: keep the panel current.

import { ReconnectingSocket, websocketUrl } from "./socket.js";

// The server closes with this when the viewer may not see the study (or it does not exist):
// retrying cannot help.
const FATAL_CLOSE_CODES = new Map([[4404, "not_found"]]);
// What the panel says for each status of the socket. "open" says nothing yet: the panel is
// live once a state arrives.
const LIVE_STATE = { connecting: "connecting", reconnecting: "reconnecting", fatal: "unavailable" };
const LIVE_TEXT = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  unavailable: "live updates unavailable · reload the page",
};
const MODEL_FIELDS = [
  "in_progress",
  "failed_qualification",
  "abandoned",
  "excluded",
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
  const values = row;
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

function start(element) {
  const panel = new ProgressPanel(element);
  const data = document.getElementById("progress-data");
  panel.render(data ? JSON.parse(data.textContent) : null);
  const socket = new ReconnectingSocket(websocketUrl(element.dataset.wsPath), {
    onMessage: (message) => {
      if (message.type !== "progress") return;
      // A state arrived: the connection works, so the next drop backs off from the start.
      socket.resetBackoff();
      panel.status("live");
      panel.render(message);
    },
    onStatus: (status) => {
      if (LIVE_STATE[status]) panel.status(LIVE_STATE[status]);
    },
    fatalCloseCodes: FATAL_CLOSE_CODES,
  });
  socket.connect();
  setInterval(() => panel.tick(), 5000);
}

const element = document.getElementById("progress-panel");
if (element) start(element);
