// The drawing pad: pointer events (mouse, pen, touch) paint a thick round brush on a canvas.

// Brush diameter as a fraction of the pad: MNIST strokes are ~2-3 px in the 20 px box a digit
// is scaled into, so a digit drawn across most of the pad needs a thick brush.
const BRUSH_FRACTION = 1 / 12;
const PAPER = "#ffffff";
const INK = "#111111";

/**
 * Make `canvas` a drawing pad.
 * @param {HTMLCanvasElement} canvas
 * @param {{onStrokeStart: () => void, onStrokeEnd: () => void}} handlers
 */
export function createPad(canvas, { onStrokeStart, onStrokeEnd }) {
  const ctx = canvas.getContext("2d");
  let stroke = null;

  function clear() {
    stroke = null;
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = canvas.width * BRUSH_FRACTION;
  }

  function toPoint(event) {
    // The canvas keeps its own resolution and CSS scales it to the layout: map client
    // coordinates into canvas units.
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * canvas.height) / rect.height,
    };
  }

  function dot(point) {
    ctx.beginPath();
    ctx.arc(point.x, point.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function lineTo(point) {
    ctx.beginPath();
    ctx.moveTo(stroke.last.x, stroke.last.y);
    ctx.lineTo(point.x, point.y);
    ctx.stroke();
    stroke.last = point;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    onStrokeStart();
    // Which device drew last (mouse, pen or touch): shown to nobody, read by the tests.
    canvas.dataset.pointer = event.pointerType;
    const point = toPoint(event);
    stroke = { id: event.pointerId, last: point };
    dot(point);
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!stroke || event.pointerId !== stroke.id) return;
    event.preventDefault();
    // Coalesced events keep fast strokes smooth where the browser batches moves.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) lineTo(toPoint(e));
  });

  function end(event) {
    if (!stroke || event.pointerId !== stroke.id) return;
    stroke = null;
    onStrokeEnd();
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  /** The drawing as a PNG Blob. */
  function toPng() {
    // toDataURL, not toBlob: Chromium encodes toBlob in idle time, which can add a second
    // before the answer; a 280x280 PNG encodes synchronously in a few milliseconds.
    const base64 = canvas.toDataURL("image/png").split(",", 2)[1];
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new Blob([bytes], { type: "image/png" });
  }

  clear();
  return { clear, toPng };
}
