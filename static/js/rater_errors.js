// What the task page does when the server refuses (docs/protocol.md, error codes): which
// refusals end the session, which are retried, and what the rater is told.

import { element, hidePanel, showPanel } from "./rater_panels.js";
import { showNotice } from "./rater_status.js";
import { backoffDelay } from "./socket.js";

const ERROR_TEXT = {
  server_error: "The server had a problem; trying again.",
  rate_limited: "Too many messages in a short time; reconnecting.",
  not_current_trial: "The server was expecting another image; the task continues.",
  not_your_trial: "The server did not recognise that image; the task continues.",
  hello_first: "The connection was out of step; the task continues.",
};
// Outcomes, not hiccups: the session cannot go on, the done page says why.
const SESSION_ENDING_ERRORS = new Set(["session_over", "study_closed"]);

// Stops the task with a panel whose button puts it away and tries `action`.
function offer(title, text, button, action) {
  showPanel({
    title,
    body: [element("p", text)],
    button,
    onButton: () => {
      hidePanel();
      action();
    },
  });
}

export class ErrorPolicy {
  // socket: the RaterSocket; endSession(redirect): leaves for the done page.
  constructor({ socket, endSession }) {
    this.socket = socket;
    this.endSession = endSession;
    this.serverErrors = 0;
  }

  // A trial means the server works again: the next server_error is retried soon.
  trialArrived() {
    this.serverErrors = 0;
  }

  onError(message) {
    // Followed by a close (4409, 4401), which onFatalClose handles.
    if (message.code === "superseded" || message.code === "no_session") return;
    if (SESSION_ENDING_ERRORS.has(message.code)) {
      showPanel({
        title: message.code === "study_closed" ? "This study has closed" : "The session has ended",
        body: [element("p", "One moment…")],
      });
      this.endSession(null);
      return;
    }
    if (message.code === "not_ready") {
      offer(
        "The study is not ready to continue",
        "Your answers are saved. Please try again in a few minutes.",
        "Try again",
        () => this.socket.reconnectNow(),
      );
      return;
    }
    if (message.code === "server_error") {
      // Nothing was stored; a fresh connection says hello and resends the held answer.
      this.serverErrors += 1;
      setTimeout(() => this.socket.reconnectNow(), backoffDelay(this.serverErrors));
    }
    const text = ERROR_TEXT[message.code] || "The server could not use the last message.";
    showNotice(`${text} (${message.code || "error"})`);
  }

  // After a close code that retrying cannot help ("fatal", with RaterSocket's reason).
  // Returns true when the session cannot go on from this page.
  onFatalClose(reason) {
    if (reason === "superseded") {
      // Not reconnecting by itself: two tabs would keep taking the session from each other.
      offer(
        "The task continues in another window",
        "You opened it again elsewhere. You can carry on there, or here.",
        "Continue here",
        () => this.socket.restart(),
      );
      return false;
    }
    showPanel({
      title: "Your session was not found",
      body: [element("p", "Please open the study link you were given again.")],
    });
    return true;
  }
}
