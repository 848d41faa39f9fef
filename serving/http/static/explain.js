// The "explain" toggle: asks /v1/classify for the occlusion saliency of the answer and draws it
// over the 28x28 model input (red: ink the answer rests on, blue: ink that argues against it).

const $ = (id) => document.getElementById(id);
// Strongest colour at the map's largest magnitude; the input stays visible underneath.
const MAX_ALPHA = 0.85;

/** @param {{onToggle: () => void}} handlers */
export function createExplain({ onToggle }) {
  const toggle = $("explain");
  const overlay = $("saliency");
  const ctx = overlay.getContext("2d");

  function clear() {
    ctx.clearRect(0, 0, 28, 28);
    overlay.hidden = true;
    overlay.dataset.filled = "false";
  }

  /** Draw a 28x28 saliency map (rows of numbers), or clear the overlay when there is none. */
  function show(saliency) {
    if (!toggle.checked || !saliency) {
      clear();
      return;
    }
    const values = saliency.flat();
    const peak = Math.max(...values.map(Math.abs));
    const image = ctx.createImageData(28, 28);
    values.forEach((value, i) => {
      const strength = peak > 0 ? Math.abs(value) / peak : 0;
      const colour = value >= 0 ? [230, 40, 30] : [40, 110, 230];
      image.data.set([...colour, Math.round(strength * MAX_ALPHA * 255)], i * 4);
    });
    ctx.putImageData(image, 0, 0);
    overlay.hidden = false;
    overlay.dataset.filled = "true";
    overlay.dataset.peak = String(peak);
  }

  toggle.addEventListener("change", onToggle);
  clear();
  return { show, clear, enabled: () => toggle.checked };
}
