// One reconnecting websocket for every page that talks to the server: JSON in and out, backoff
// with jitter after a drop, and no retry after a close code that says retrying cannot help.

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;

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

export class ReconnectingSocket {
  /**
   * onOpen(): each time a connection opens, before the "open" status; onMessage(message): every
   * frame that is a JSON object; onStatus(status, detail): "connecting" | "open" |
   * "reconnecting" | "closed" | "fatal". fatalCloseCodes: Map of close code to the reason
   * passed with "fatal"; after one of those the socket waits for restart().
   */
  constructor(url, { onOpen = () => {}, onMessage, onStatus = () => {}, fatalCloseCodes }) {
    this.url = url;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.fatalCloseCodes = fatalCloseCodes || new Map();
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    // A retry already waiting need not wait out its backoff once the network is back.
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
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A socket that was replaced (reconnectNow) may still deliver events: only the current
    // one speaks for the connection.
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.onOpen();
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
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      const fatal = this.fatalCloseCodes.get(event.code);
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

  // The server answered: the connection works, so the next drop backs off from the start.
  resetBackoff() {
    this.attempt = 0;
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

  // After a fatal close, when the user asks for it (a "Continue here" button).
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

  // Returns false, and sends nothing, while the connection is down.
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // For good: the page has nothing more to say to the server.
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
