// The study's settings as the server sends them (docs/protocol.md): rendered into the task page
// and repeated in every session message. The server owns them, the answer keys among them; this
// page holds no default of its own.

import { ui } from "./rater_elements.js";

let settings = JSON.parse(document.getElementById("rater-data").textContent).settings;

export function currentSettings() {
  return settings;
}

// sent: the session message's settings; what it leaves out keeps its value.
export function applySettings(sent) {
  const keys = { ...settings.keys, ...sent.keys };
  settings = { ...settings, ...sent, keys };
  ui.keyFake.textContent = keys.fake.toUpperCase();
  ui.keyReal.textContent = keys.real.toUpperCase();
}
