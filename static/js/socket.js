// The rater's websocket: JSON in and out, reconnection with backoff, and the answer kept until
// the server acknowledges it (docs/protocol.md, "Resume").

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;
// The server closes with these when retrying cannot help: no session for this study, or the
// session went on in another tab (reconnecting would take it back, and the tabs would fight).
const FATAL_CLOSE_CODES = new Map([
  [4401, "no_session"],
  [4409, "superseded"],
]);

export function websocketUrl(path, here = window.location) {
  const scheme = here.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${here.host}${path}`;
}

// "Equal jitter": half the delay fixed, half random, so that raters dropped together by a
// server restart do not all come back in the same instant, yet nobody waits near zero.
export function backoffDelay(attempt, random = Math.random) {
  const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return delay / 2 + random() * (delay / 2);
}

export class RaterSocket {
  /**
   * hello(): the hello message for a (re)connect; onMessage(message): every server message;
   * onStatus(status, detail): "connecting" | "open" | "reconnecting" | "closed" | "fatal".
   * storageKey: where the unacknowledged answer survives a reload of the page (sessionStorage).
   */
  constructor(url, { hello, onMessage, onStatus = () => {}, storageKey = null }) {
    this.url = url;
    this.hello = hello;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.storageKey = storageKey;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.presentedQueue = [];
    // Every answer given on this page, by trial: a trial gets one answer, whatever happens.
    this.answers = new Map();
    this.pending = this.loadPending();
    if (this.pending) this.answers.set(this.pending.trial, this.pending);
    this.onOnline = () => {
      if (this.timer !== null) this.reconnectNow();
    };
    window.addEventListener("online", this.onOnline);
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.onStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.sendNow({ ...this.hello(), type: "hello" });
      for (const message of this.presentedQueue.splice(0)) this.sendNow(message);
      if (this.pending) this.sendNow(this.pending);
      this.onStatus("open");
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("hype: ignored a frame that is not JSON", event.data);
        return;
      }
      if (message === null || typeof message !== "object") return;
      // A session is the server's answer to hello: the connection works, so start the
      // backoff from the beginning next time.
      if (message.type === "session") this.attempt = 0;
      if (message.type === "ack" && this.pending && this.pending.trial === message.trial) {
        this.setPending(null);
      }
      // The server has moved on to another trial, so the held answer was stored (its ack was
      // lost) or can no longer be: resending it would only draw errors.
      if (message.type === "trial" && this.pending && this.pending.trial !== message.trial) {
        this.setPending(null);
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      const fatal = FATAL_CLOSE_CODES.get(event.code);
      if (fatal) {
        this.halt();
        this.onStatus("fatal", fatal);
        return;
      }
      this.scheduleReconnect();
    });
    // Errors are followed by a close event, which decides what happens next.
    ws.addEventListener("error", () => {});
  }

  scheduleReconnect() {
    if (this.stopped || this.timer !== null) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.onStatus("reconnecting", { delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  // After a fatal close, when the rater asks for it (a "Continue here" button).
  restart() {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.close();
    }
    this.connect();
  }

  sendNow(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // Sent from the frame that showed the image; if the connection is down it goes out right
  // after the next hello, before the answer that follows it.
  presented(trial) {
    const message = { type: "presented", trial };
    if (!this.sendNow(message)) this.presentedQueue.push(message);
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
    this.sendNow(answer);
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

  // For good: the session is over or cannot continue.
  stop() {
    this.halt();
    this.onStatus("closed");
  }

  halt() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    window.removeEventListener("online", this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }
}
