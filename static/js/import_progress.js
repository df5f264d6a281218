// The import page while an import runs: polls its progress endpoint about once a second,
// moves the bar, and reloads the page once the import is over (the page then shows its
// outcome). The starting numbers and the endpoint come from json_script "import-progress-data".

const POLL_MS = 1000;
const MAX_RETRY_MS = 10000;

const config = JSON.parse(document.getElementById("import-progress-data").textContent);
const bar = document.getElementById("import-bar");
const fill = bar.querySelector("span");
const count = document.getElementById("import-count");
const live = document.getElementById("import-live");
const liveText = live.innerHTML;

function show({ done, total, percent }) {
  bar.setAttribute("aria-valuenow", String(done));
  bar.setAttribute("aria-valuemax", String(total));
  fill.style.width = `${percent}%`;
  count.textContent = total
    ? `${done} of ${total} images and masks stored (${percent}%)`
    : "Unpacking the uploads and reading every file's header…";
}

function say(text) {
  live.textContent = text;
}

async function poll(retryMs) {
  let response;
  try {
    response = await fetch(config.url, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch {
    // The server is unreachable for now (a restart, the network): try again, less often.
    const next = Math.min(MAX_RETRY_MS, retryMs * 2);
    say(`Cannot reach the server; trying again in ${Math.round(next / 1000)} s…`);
    setTimeout(() => poll(next), next);
    return;
  }
  let progress = null;
  if (response.ok && response.headers.get("Content-Type")?.startsWith("application/json")) {
    progress = await response.json();
  }
  if (progress === null) {
    // Logged out (the login page came back), or the import is gone: polling cannot help.
    say("Progress is unavailable; reload the page.");
    return;
  }
  show(progress);
  if (progress.status !== "running") {
    window.location.reload();
    return;
  }
  if (retryMs !== POLL_MS) live.innerHTML = liveText;
  setTimeout(() => poll(POLL_MS), POLL_MS);
}

show(config);
setTimeout(() => poll(POLL_MS), POLL_MS);
