// The answer panel: predicted label, probability bars, the 28x28 the model saw, metadata,
// and the status line.

const $ = (id) => document.getElementById(id);

export function createAnswer() {
  const prediction = $("prediction");
  const confidence = $("confidence");
  const bars = $("probabilities");
  const status = $("status");
  const prepared = $("prepared");
  const preparedCtx = prepared.getContext("2d");
  const meta = ["model", "version", "provider", "rtt"].map((key) => [key, $(`meta-${key}`)]);

  function setStatus(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
  }

  function bar(label, probability, known, winner) {
    const row = document.createElement("li");
    row.className = winner ? "bar-row winner" : "bar-row";
    row.dataset.label = label;
    row.dataset.probability = String(probability);
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.width = `${(probability * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = known ? `${(probability * 100).toFixed(1)}%` : "";
    row.append(name, track, value);
    return row;
  }

  function renderBars(labels, probabilities, winner) {
    bars.replaceChildren(
      ...labels.map((label, i) =>
        bar(label, probabilities ? probabilities[i] : 0, Boolean(probabilities), i === winner),
      ),
    );
  }

  function drawPrepared(pixels) {
    // White digit on black, one canvas pixel per model input pixel; CSS scales it up with
    // image-rendering: pixelated.
    const image = preparedCtx.createImageData(28, 28);
    pixels.flat().forEach((value, i) => {
      const v = Math.round(Math.min(1, Math.max(0, value)) * 255);
      image.data.set([v, v, v, 255], i * 4);
    });
    preparedCtx.putImageData(image, 0, 0);
    prepared.dataset.filled = "true";
  }

  function clearPrepared() {
    preparedCtx.fillStyle = "#000000";
    preparedCtx.fillRect(0, 0, 28, 28);
    prepared.dataset.filled = "false";
  }

  /** Show a /v1/classify answer (its first image). */
  function show(answer, elapsedMs) {
    const best = answer.predictions[0];
    prediction.textContent = best.label;
    confidence.textContent = `${(best.probability * 100).toFixed(1)}% sure`;
    renderBars(answer.labels, best.probabilities, answer.labels.indexOf(best.label));
    if (answer.prepared) drawPrepared(answer.prepared[0]);
    else clearPrepared();
    const values = {
      model: answer.model,
      version: answer.version,
      provider: answer.provider,
      rtt: `${elapsedMs.toFixed(0)} ms`,
    };
    for (const [key, el] of meta) el.textContent = values[key];
    setStatus(`Classified by ${answer.model} v${answer.version} in ${values.rtt}.`);
  }

  /** No answer: empty label and bars for `labels` (the selected model's classes). */
  function reset(labels) {
    prediction.textContent = "";
    confidence.textContent = "";
    renderBars(labels, null, -1);
    clearPrepared();
    for (const [, el] of meta) el.textContent = "\u2013";
  }

  clearPrepared();
  return { show, reset, setStatus };
}
