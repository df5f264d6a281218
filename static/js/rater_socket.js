// The rater's websocket: hello on every (re)connect, and each answer kept, across reloads too,
// until the server acknowledges it (docs/protocol.md, "Resume").

import { ReconnectingSocket } from "./socket.js";

// The server closes with these when retrying cannot help: no session for this study, or the
// session went on in another tab (reconnecting would take it back, and the tabs would fight).
const FATAL_CLOSE_CODES = new Map([
  [4401, "no_session"],
  [4409, "superseded"],
]);

export class RaterSocket {
  /**
   * hello(): the hello message for a (re)connect; onMessage(message): every server message;
   * onStatus(status, detail): as ReconnectingSocket's, "fatal" with "no_session" or "superseded".
   * storageKey: where the unacknowledged answer survives a reload of the page (sessionStorage).
   */
  constructor(url, { hello, onMessage, onStatus = () => {}, storageKey = null }) {
    this.hello = hello;
    this.onMessage = onMessage;
    this.storageKey = storageKey;
    this.presentedQueue = [];
    // Every answer given on this page, by trial: a trial gets one answer, whatever happens.
    this.answers = new Map();
    this.pending = this.loadPending();
    if (this.pending) this.answers.set(this.pending.trial, this.pending);
    this.socket = new ReconnectingSocket(url, {
      onOpen: () => this.greet(),
      onMessage: (message) => this.receive(message),
      onStatus,
      fatalCloseCodes: FATAL_CLOSE_CODES,
    });
  }

  connect() {
    this.socket.connect();
  }

  // After "superseded", when the rater takes the session back ("Continue here").
  restart() {
    this.socket.restart();
  }

  reconnectNow() {
    this.socket.reconnectNow();
  }

  // For good: the session is over or cannot continue.
  stop() {
    this.socket.stop();
  }

  // The server expects this order on every connection: hello, then what was presented while
  // the socket was down, then the answer that followed. An answer is only ever given to an
  // image that was on screen, so its presented goes before it again: after a reload the
  // queue is gone, and a timed answer without one is refused (not_presented). The server
  // counts the first presented of a trial only.
  greet() {
    this.socket.send({ ...this.hello(), type: "hello" });
    const queued = this.presentedQueue.splice(0);
    if (this.pending && !queued.some((message) => message.trial === this.pending.trial)) {
      queued.push({ type: "presented", trial: this.pending.trial });
    }
    for (const message of queued) this.socket.send(message);
    if (this.pending) this.socket.send(this.pending);
  }

  receive(message) {
    // A session is the server's answer to hello: the connection works, so start the
    // backoff from the beginning next time.
    if (message.type === "session") this.socket.resetBackoff();
    if (message.type === "ack" && this.pending && this.pending.trial === message.trial) {
      this.setPending(null);
    }
    // The server has moved on to another trial, so the held answer was stored (its ack was
    // lost) or can no longer be: resending it would only draw errors.
    if (message.type === "trial" && this.pending && this.pending.trial !== message.trial) {
      this.setPending(null);
    }
    this.onMessage(message);
  }

  // Sent from the frame that showed the image; if the connection is down it goes out right
  // after the next hello, before the answer that follows it.
  presented(trial) {
    const message = { type: "presented", trial };
    if (!this.socket.send(message)) this.presentedQueue.push(message);
  }

  hasAnswered(trial) {
    return this.answers.has(trial);
  }

  get pendingTrial() {
    return this.pending ? this.pending.trial : null;
  }

  // Returns false, and sends nothing, when this trial already has an answer.
  answer(message) {
    if (this.answers.has(message.trial)) return false;
    const answer = { ...message, type: "answer" };
    this.answers.set(answer.trial, answer);
    this.setPending(answer);
    this.socket.send(answer);
    return true;
  }

  setPending(answer) {
    this.pending = answer;
    if (!this.storageKey) return;
    try {
      if (answer) sessionStorage.setItem(this.storageKey, JSON.stringify(answer));
      else sessionStorage.removeItem(this.storageKey);
    } catch {
      // Storage can be disabled (private modes); the answer is then kept for this page only.
    }
  }

  loadPending() {
    if (!this.storageKey) return null;
    try {
      const stored = JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
      return stored && typeof stored.trial === "string" ? stored : null;
    } catch {
      return null;
    }
  }
}
