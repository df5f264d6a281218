// The panel over the stage: block introductions and the messages that stop the task, and the
// wait for Space or the panel's button before the task goes on.

import { ui } from "./rater_elements.js";

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// keys: the server's settings.keys, so the legend shows the keys the task really takes.
function keyLegend(keys) {
  const legend = element("div", undefined, "key-legend");
  for (const [choice, label] of [
    ["fake", "fake"],
    ["real", "real"],
  ]) {
    const item = element("div", undefined, "key-legend-item");
    item.append(element("kbd", keys[choice].toUpperCase(), "key"));
    item.append(element("span", label));
    legend.append(item);
  }
  return legend;
}

// One handler at a time (onclick, not addEventListener): a panel replaced before its button
// was pressed must not leave its action behind for the next one.
export function showPanel({ title, body = [], button = null, onButton = null }) {
  ui.panelTitle.textContent = title;
  ui.panelBody.replaceChildren(...body);
  ui.panelButton.hidden = !button;
  ui.panelButton.textContent = button || "";
  ui.panelButton.onclick = onButton;
  ui.panel.hidden = false;
}

export function hidePanel() {
  ui.panel.hidden = true;
  ui.panelButton.onclick = null;
  if (ui.panel.contains(document.activeElement)) document.activeElement.blur();
}

// Resolves on Space or on the panel's button, which showPanel has already put up.
function waitForSpace(signal) {
  return new Promise((resolve, reject) => {
    const done = (event) => {
      event.preventDefault();
      cleanUp();
      resolve();
    };
    const onKey = (event) => {
      if (event.repeat || !(event.code === "Space" || event.key === " ")) return;
      done(event);
    };
    const onAbort = () => {
      cleanUp();
      reject(signal.reason);
    };
    const cleanUp = () => {
      window.removeEventListener("keydown", onKey, true);
      if (ui.panelButton.onclick === done) ui.panelButton.onclick = null;
      signal?.removeEventListener("abort", onAbort);
    };
    window.addEventListener("keydown", onKey, true);
    ui.panelButton.onclick = done;
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Shows the introduction of the trial's block and resolves once the rater starts it.
 * keys: settings.keys; qualification: the server's qualification message, or null.
 */
export async function blockIntro(trial, { keys, qualification }, signal) {
  const block = trial.block;
  const body = [];
  let title;
  if (trial.phase === "qualification") {
    title = "Practice round";
    body.push(
      element(
        "p",
        `Before the main task: ${block.length} images with no time limit. For each, decide ` +
          "whether it is a real image or a fake one made by a computer.",
      ),
      element("p", "You need to get enough of them right to go on to the main task."),
    );
  } else {
    title = `Block ${block.number} of ${block.of}`;
    const passed = qualification && qualification.passed;
    if (passed && block.number === 1) {
      const { correct, total } = qualification;
      body.push(element("p", `You passed the practice round (${correct} of ${total} correct).`));
    }
    body.push(
      element(
        "p",
        trial.timed
          ? `${block.length} images. Each one flashes briefly after a 3-2-1 countdown, followed ` +
              "by noise. Answer once it is gone; there is no hurry to answer."
          : `${block.length} images. Look at each as long as you like, then answer.`,
      ),
    );
    if (block.number > 1) body.push(element("p", "Take a break first if you like."));
  }
  body.push(keyLegend(keys), element("p", "Press Space to start.", "panel-hint"));
  showPanel({ title, body, button: "Start" });
  try {
    await waitForSpace(signal);
  } finally {
    hidePanel();
  }
}
