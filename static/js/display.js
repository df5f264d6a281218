// The images' size on screen: the browser's step of the display rule (docs/raters.md, "Devices
// and display"). The server sends the CSS size of the longer side and the images' own size
// (experiments/rating/display.py); here it becomes a whole number of device pixels per image
// pixel at this screen's devicePixelRatio, and the task page's images and masks get that box.

const roundHalfUp = (value) => Math.floor(value + 0.5);

/**
 * The box an image of imageWidth x imageHeight gets when its longer side is asked to be cssPx
 * CSS pixels on a screen of device pixel ratio dpr:
 * - enlarged (or kept): k = the whole number of device pixels per image pixel whose size is
 *   nearest cssPx * dpr (at least 1);
 * - reduced: m = the whole number of image pixels per device pixel whose size is nearest
 *   (the larger on a tie), when m divides both sides; otherwise no whole number fits and the
 *   image is scaled smoothly to the nearest device pixel;
 * and the CSS size is that device size / dpr.
 * Returns {deviceWidth, deviceHeight, cssWidth, cssHeight, scale, whole, pixelated}.
 */
export function displayBox({ imageWidth, imageHeight, cssPx, dpr }) {
  const ratio = Number.isFinite(dpr) && dpr > 0 ? dpr : 1;
  const width = imageWidth || cssPx;
  const height = imageHeight || cssPx;
  const native = Math.max(width, height);
  const target = cssPx * ratio;
  let scale;
  let whole = true;
  if (target >= native) {
    scale = Math.max(1, roundHalfUp(target / native));
  } else {
    const below = Math.floor(native / target); // native / below >= target
    const above = below + 1; // native / above < target
    const m = native / below - target <= target - native / above ? below : above;
    if (width % m === 0 && height % m === 0) {
      scale = 1 / m;
    } else {
      scale = target / native;
      whole = false;
    }
  }
  const deviceWidth = whole ? width * scale : Math.max(1, Math.round(width * scale));
  const deviceHeight = whole ? height * scale : Math.max(1, Math.round(height * scale));
  return {
    deviceWidth,
    deviceHeight,
    cssWidth: deviceWidth / ratio,
    cssHeight: deviceHeight / ratio,
    scale,
    whole,
    // Whole-number enlargement: each image pixel a block of identical device pixels.
    pixelated: whole && scale >= 2,
  };
}

/** The box for the server's display settings (rater_settings' "display") on this screen. */
export function boxFor(display, dpr = window.devicePixelRatio) {
  return displayBox({
    imageWidth: display.image_width,
    imageHeight: display.image_height,
    cssPx: display.css_px,
    dpr,
  });
}

/**
 * The window size the task page needs for these settings on this screen, in CSS pixels: the
 * image's box plus the page's margins around it (in rem of the page's font).
 */
export function windowNeeded(display, dpr = window.devicePixelRatio) {
  const box = boxFor(display, dpr);
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  return {
    width: Math.ceil(box.cssWidth + display.margin_width_rem * rem),
    height: Math.ceil(box.cssHeight + display.margin_height_rem * rem),
    box,
  };
}

function apply(display, root) {
  const box = boxFor(display);
  root.style.setProperty("--display-width", `${box.cssWidth}px`);
  root.style.setProperty("--display-height", `${box.cssHeight}px`);
  root.classList.toggle("display-pixelated", box.pixelated);
  return box;
}

// The offsets that put the images' top-left corner on a device pixel: `snap`, in layout (so
// the box starts on a whole CSS pixel, which browsers may otherwise round to when painting),
// then `nudge`, a transform of less than a device pixel (a whole CSS pixel is not a whole
// device pixel at DPR 1.25).
const offset = { snapX: 0, snapY: 0, nudgeX: 0, nudgeY: 0, root: null };

function onDeviceGrid(position, dpr) {
  const layout = Math.round(position); // whole CSS pixels
  const device = layout * dpr;
  return { snap: layout - position, nudge: (Math.round(device) - device) / dpr };
}

/**
 * Moves the stage's images by less than a pixel so that their corner falls on a device pixel.
 * Centred in a page laid out in rem, it may not: at DPR 1.25 a box at 234.03 CSS px is painted
 * from device pixel 292.5, and each image pixel is then blended across the boundary instead of
 * covering whole device pixels. `item` is one of the stage's images (all share one place); its
 * position is measured without the current offsets.
 */
export function alignToDevicePixels(item, root = offset.root || document.documentElement) {
  if (!item || !item.isConnected) return;
  const dpr = window.devicePixelRatio || 1;
  const rect = item.getBoundingClientRect();
  const x = onDeviceGrid(rect.left - offset.snapX - offset.nudgeX, dpr);
  const y = onDeviceGrid(rect.top - offset.snapY - offset.nudgeY, dpr);
  Object.assign(offset, { snapX: x.snap, snapY: y.snap, nudgeX: x.nudge, nudgeY: y.nudge, root });
  root.style.setProperty("--display-snap-x", `${x.snap}px`);
  root.style.setProperty("--display-snap-y", `${y.snap}px`);
  root.style.setProperty("--display-nudge-x", `${x.nudge}px`);
  root.style.setProperty("--display-nudge-y", `${y.nudge}px`);
}

/**
 * Sizes the task page's images and masks (the CSS variables --display-width/--display-height,
 * and pixelated rendering for whole-number enlargements), and again whenever the device pixel
 * ratio changes (the window moved to another screen, the page was zoomed); keeps the images
 * of `container` on the device pixel grid when the window changes. Returns a stop().
 */
export function watchDisplay(display, { root = document.documentElement, container } = {}) {
  let query = null;
  offset.root = root;
  const align = () => alignToDevicePixels(container?.querySelector(".stage-item"), root);
  const onChange = () => {
    query?.removeEventListener("change", onChange);
    apply(display, root);
    align();
    query = window.matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`);
    query.addEventListener("change", onChange);
  };
  onChange();
  window.addEventListener("resize", align);
  return () => {
    query?.removeEventListener("change", onChange);
    window.removeEventListener("resize", align);
  };
}
