// The display clock: refresh-rate measurement and frame-counted timelines on requestAnimationFrame.
//
// Timing convention. Every time recorded here is the timestamp requestAnimationFrame hands its
// callback: the start of the frame in which the DOM was changed. A change made in that callback
// is painted in that frame and reaches the screen at the following vsync, so the appearance and
// the disappearance of an image are both shifted by the same one frame, and
//   shown_ms = timestamp of the frame that hid it − timestamp of the frame that showed it
// is the time it spent on screen. Reaction times measured from such a timestamp include that
// one-frame lag (about refresh_ms).

export const FALLBACK_REFRESH_MS = 1000 / 60;

export function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(resolve));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// Browsers coarsen timestamps (to 0.1 ms in Chromium), so single intervals jitter between
// neighbouring values (16.6, 16.7). The median picks the cadence; the span of the run divided
// by the number of frames in it (dropped frames counted as what they were) then gives the
// interval well below that granularity, which matters when hundreds of frames are counted.
// null when the timestamps say nothing (fewer than two, or no time between them).
export function refreshFromTimestamps(timestamps) {
  const intervals = intervalsOf(timestamps);
  if (intervals.length === 0) return null;
  const typical = median(intervals);
  if (!(typical > 0)) return null;
  let frames = 0;
  for (const interval of intervals) frames += Math.max(1, Math.round(interval / typical));
  return (timestamps[timestamps.length - 1] - timestamps[0]) / frames;
}

function intervalsOf(timestamps) {
  const intervals = [];
  for (let i = 1; i < timestamps.length; i += 1) intervals.push(timestamps[i] - timestamps[i - 1]);
  return intervals;
}

// The share of intervals within `tolerance` (a fraction of the median) of a whole number of
// median intervals: how steadily the display drew frames. A dropped frame (two intervals in
// one) keeps the cadence; intervals at no common rate do not.
export function steadyShare(intervals, tolerance) {
  if (intervals.length === 0) return 0;
  const typical = median(intervals);
  if (!(typical > 0)) return 0;
  const steady = intervals.filter((value) => {
    const ratio = value / typical;
    return Math.abs(ratio - Math.max(1, Math.round(ratio))) <= tolerance;
  });
  return steady.length / intervals.length;
}

const MIN_TIMESTAMPS = 11;

/**
 * Measures the refresh interval over `frames` animation frames: resolves with {refreshMs,
 * intervals}, refreshMs null when it could not be measured. rAF does not run in a hidden tab;
 * after timeoutMs it gives up with what was collected rather than leave the rater waiting, and
 * too little to go on (fewer than 11 frames) is null, never a guess.
 */
export function refreshMeasurement({ frames = 90, warmup = 5, timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const timestamps = [];
    let seen = 0;
    let finished = false;
    let handle = 0;
    const finish = () => {
      if (finished) return;
      finished = true;
      cancelAnimationFrame(handle);
      clearTimeout(timer);
      const enough = timestamps.length >= MIN_TIMESTAMPS;
      resolve({
        refreshMs: enough ? refreshFromTimestamps(timestamps) : null,
        intervals: intervalsOf(timestamps),
      });
    };
    const timer = setTimeout(finish, timeoutMs);
    const tick = (t) => {
      // The first frames after load are irregular (layout, fonts, first paint).
      seen += 1;
      if (seen > warmup) timestamps.push(t);
      if (timestamps.length > frames) finish();
      else handle = requestAnimationFrame(tick);
    };
    handle = requestAnimationFrame(tick);
  });
}

// The refresh interval, or 60 Hz's when it cannot be measured: for what must run on a number
// (the timing harness). The rater's page reports the unmeasured case as such (rater.js).
export async function measureRefresh(options) {
  const { refreshMs } = await refreshMeasurement(options);
  return refreshMs ?? FALLBACK_REFRESH_MS;
}

export function framesFor(ms, refreshMs) {
  return Math.max(1, Math.round(ms / refreshMs));
}

export class TimelineCancelled extends Error {
  constructor() {
    super("timeline cancelled");
    this.name = "AbortError";
  }
}

/**
 * Runs steps on animation frames and records the frame timestamp at which each one began.
 *
 * A step is {name, enter(t), frames | ms | neither, gate?, hold?}:
 * - enter(t) runs inside the rAF callback of the frame where the step begins, so the previous
 *   step's element and this one are swapped in the same frame;
 * - `frames`: the step lasts that many frames. Frames are counted from the timestamps, each
 *   interval as max(1, round(interval / refresh)), so a callback the browser skipped (a dropped
 *   frame) still counts and the display does not overstay;
 * - `ms`: the step lasts until the first frame at or past ms (within half a frame);
 * - neither: the final state; the timeline resolves once it has been entered;
 * - gate(): the step does not begin before gate() returns true (checked every frame); hold(t)
 *   runs once, in the first frame that had to wait.
 *
 * The first callback is requested synchronously, which callers that order rAF callbacks
 * (the timing harness's observer) rely on.
 *
 * Returns {done, cancel}; done resolves with {times: [{name, t, frames}], end} where `end` is
 * the timestamp of the final step, and rejects with TimelineCancelled after cancel().
 */
export function runTimeline(steps, { refreshMs = FALLBACK_REFRESH_MS } = {}) {
  let resolveDone;
  let rejectDone;
  const done = new Promise((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const times = [];
  let index = -1;
  let stepStart = 0;
  let lastFrame = 0;
  let counted = 0;
  let holding = false;
  let handle = 0;
  let over = false;

  const stepIsOver = (step, t) => {
    if (step.frames !== undefined) return counted >= step.frames;
    return t - stepStart >= step.ms - refreshMs / 2;
  };

  const tick = (t) => {
    if (over) return;
    try {
      if (index >= 0) {
        counted += Math.max(1, Math.round((t - lastFrame) / refreshMs));
        lastFrame = t;
      }
      if (index < 0 || stepIsOver(steps[index], t)) {
        const next = steps[index + 1];
        if (!next) {
          // The last step had a duration: the timeline ends on the frame that ends it.
          over = true;
          times[index].frames = counted;
          resolveDone({ times, end: t });
          return;
        }
        if (next.gate && !next.gate()) {
          if (!holding) {
            holding = true;
            next.hold?.(t);
          }
          handle = requestAnimationFrame(tick);
          return;
        }
        holding = false;
        if (index >= 0) times[index].frames = counted;
        index += 1;
        stepStart = t;
        lastFrame = t;
        counted = 0;
        times.push({ name: next.name, t, frames: null });
        next.enter?.(t);
        if (next.frames === undefined && next.ms === undefined) {
          over = true;
          resolveDone({ times, end: t });
          return;
        }
      }
      handle = requestAnimationFrame(tick);
    } catch (error) {
      over = true;
      rejectDone(error);
    }
  };

  if (steps.length === 0) throw new Error("a timeline needs at least one step");
  handle = requestAnimationFrame(tick);
  return {
    done,
    cancel() {
      if (over) return;
      over = true;
      cancelAnimationFrame(handle);
      rejectDone(new TimelineCancelled());
    },
  };
}

export function timeOf(result, name) {
  const entry = result.times.find((step) => step.name === name);
  return entry ? entry.t : null;
}

// Visibility toggles keep the element in layout, so a swap costs no layout work in the frame
// that must show it.
export function show(element) {
  element.style.visibility = "visible";
}

export function hide(element) {
  element.style.visibility = "hidden";
}

// 3-2-1, each number for stepMs, as timeline steps to put in front of a display so that the
// last number and the image are swapped in one frame.
export function countdownSteps(element, stepMs, numbers = [3, 2, 1]) {
  return numbers.map((number) => ({
    name: `countdown-${number}`,
    ms: stepMs,
    enter() {
      element.textContent = String(number);
      show(element);
    },
    leave: () => hide(element),
  }));
}

export function countdown(element, stepMs, { refreshMs, numbers } = {}) {
  const steps = countdownSteps(element, stepMs, numbers);
  steps.push({ name: "countdown-end", enter: () => hide(element) });
  return runTimeline(steps, { refreshMs });
}

/**
 * The frame-counted display: `image` for `frames` frames, then each mask for its frames, then
 * `finish(t)` hides the last one. `before` steps (a countdown) run first; `gate`/`hold` keep the
 * image back until it is decoded. Resolves with shown_ms and mask_ms measured from the frame
 * timestamps (see the convention at the top) and the timestamp of the frame that ended it.
 */
export function frameSequence({
  image,
  frames,
  masks = [],
  refreshMs,
  before = [],
  gate,
  hold,
  onShow,
  finish,
}) {
  const steps = [...before];
  let previous = null;
  const swapTo = (element) => {
    if (previous) hide(previous);
    show(element);
    previous = element;
  };
  steps.push({
    name: "image",
    frames,
    gate,
    hold,
    enter(t) {
      for (const step of before) step.leave?.();
      swapTo(image);
      onShow?.(t);
    },
  });
  masks.forEach((mask, i) => {
    steps.push({ name: `mask-${i}`, frames: mask.frames, enter: () => swapTo(mask.element) });
  });
  steps.push({
    name: "end",
    enter(t) {
      if (previous) hide(previous);
      finish?.(t);
    },
  });
  const timeline = runTimeline(steps, { refreshMs });
  const done = timeline.done.then((result) => {
    const shownAt = timeOf(result, "image");
    const masksAt = masks.length ? timeOf(result, "mask-0") : result.end;
    return {
      ...result,
      shownAt,
      shown_ms: masksAt - shownAt,
      mask_ms: result.end - masksAt,
      frames: result.times.find((step) => step.name === "image").frames,
    };
  });
  return { done, cancel: timeline.cancel };
}

// Whether the page lost visibility (another tab, a minimised window) at any time while watched.
export function watchVisibility() {
  let hidden = document.visibilityState === "hidden";
  const onChange = () => {
    if (document.visibilityState === "hidden") hidden = true;
  };
  document.addEventListener("visibilitychange", onChange);
  return {
    get hidden() {
      return hidden;
    },
    stop() {
      document.removeEventListener("visibilitychange", onChange);
    },
  };
}
