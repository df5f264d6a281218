// The study's settings as the server sends them in its session message (docs/protocol.md),
// the answer keys among them: the server owns the keys, this page only shows and uses them.

import { ui } from "./rater_elements.js";

// The session message arrives before any trial. Until then, or if it ever lacked keys, the
// keys the page was rendered with: none are made up here.
let settings = {
  feedback: true,
  countdown_ms: 500,
  keys: {
    fake: ui.keyFake.textContent.trim().toLowerCase(),
    real: ui.keyReal.textContent.trim().toLowerCase(),
  },
};

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
