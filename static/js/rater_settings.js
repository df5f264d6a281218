// The study's settings as the server sends them in its session message (docs/protocol.md),
// the answer keys among them: the server owns the keys, this page only shows and uses them.

const labels = {
  fake: document.getElementById("key-fake"),
  real: document.getElementById("key-real"),
};

// The session message arrives before any trial. Until then, or if it ever lacked keys, the
// keys the page was rendered with: none are made up here.
let settings = {
  feedback: true,
  countdown_ms: 500,
  keys: {
    fake: labels.fake.textContent.trim().toLowerCase(),
    real: labels.real.textContent.trim().toLowerCase(),
  },
};

export function currentSettings() {
  return settings;
}

// sent: the session message's settings; what it leaves out keeps its value.
export function applySettings(sent) {
  const keys = { ...settings.keys, ...sent.keys };
  settings = { ...settings, ...sent, keys };
  labels.fake.textContent = keys.fake.toUpperCase();
  labels.real.textContent = keys.real.toUpperCase();
}
