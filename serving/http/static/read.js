// "Read a number" mode: the drawing or photo goes to POST v1/read, and the image is shown
// with a box and a label over every digit the server found.

const $ = (id) => document.getElementById(id);
const BOX_COLOUR = "#e11d48";

export function createReadView() {
  const output = $("read-output");
  const toggle = $("read-mode");
  const text = $("read-text");
  const canvas = $("read-canvas");
  const ctx = canvas.getContext("2d");

  function enabled() {
    return toggle.checked;
  }

  function reset() {
    text.textContent = "";
    canvas.width = 0;
    canvas.height = 0;
    canvas.dataset.boxes = "0";
  }

  /**
   * Show a v1/read answer over `blob` (the image that was sent). Boxes are in the upright
   * image's pixels; the browser applies the photo's EXIF orientation when it decodes it.
   */
  async function show(answer, blob) {
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 160));
    ctx.lineWidth = line;
    ctx.strokeStyle = BOX_COLOUR;
    ctx.fillStyle = BOX_COLOUR;
    ctx.textBaseline = "bottom";
    for (const digit of answer.digits) {
      const { x, y, width, height } = digit.box;
      ctx.strokeRect(x, y, width, height);
      ctx.font = `bold ${Math.max(12, Math.round(height / 3))}px system-ui, sans-serif`;
      ctx.fillText(digit.label, x, Math.max(y - line, 12));
    }
    canvas.dataset.boxes = String(answer.digits.length);
    text.textContent = answer.text;
  }

  toggle.addEventListener("change", () => {
    output.hidden = !toggle.checked;
    reset();
  });
  output.hidden = !toggle.checked;
  reset();
  return { enabled, show, reset, onToggle: (fn) => toggle.addEventListener("change", fn) };
}
