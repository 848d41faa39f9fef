// The draw-a-digit page: a drawing pad and a photo upload, classified by this server's
// POST /v1/classify. Plain browser JavaScript, no build step, nothing fetched from elsewhere.
"use strict";

(() => {
  // Wait after a stroke ends before sending, so a digit drawn in several strokes ("4", "7"
  // with a bar) is sent once, when the pen rests.
  const SEND_DELAY_MS = 150;
  // Brush diameter as a fraction of the pad: MNIST strokes are ~2-3 px in the 20 px box a
  // digit is scaled into, so a digit drawn across most of the pad needs a thick brush.
  const BRUSH_FRACTION = 1 / 12;
  const PAPER = "#ffffff";
  const INK = "#111111";

  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  const modelSelect = $("model");
  const clearButton = $("clear");
  const predictionEl = $("prediction");
  const confidenceEl = $("confidence");
  const barsEl = $("probabilities");
  const statusEl = $("status");
  const preparedCanvas = $("prepared");
  const preparedCtx = preparedCanvas.getContext("2d");
  const uploadInput = $("upload");
  const dropzone = $("dropzone");
  const uploadedFigure = $("uploaded-figure");
  const uploadedImg = $("uploaded");
  const uploadedName = $("uploaded-name");
  const meta = {
    model: $("meta-model"),
    version: $("meta-version"),
    provider: $("meta-provider"),
    rtt: $("meta-rtt"),
  };
  const modelInfo = $("model-info");

  // What the current answer is about: null (nothing), {kind: "drawing"} or
  // {kind: "upload", blob}. Switching models re-classifies it.
  let source = null;
  let models = new Map();
  let sendTimer = 0;
  // Each classification gets a number; an answer that is not for the latest one is dropped
  // (a slow reply must not overwrite a newer drawing's answer or a cleared page).
  let requestSeq = 0;
  let inFlight = null;
  let stroke = null;
  let uploadUrl = "";

  // ------------------------------------------------------------------ status line

  function setStatus(text, kind = "info") {
    statusEl.textContent = text;
    statusEl.dataset.kind = kind;
  }

  // ------------------------------------------------------------------ drawing pad

  function resetPad() {
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = pad.width * BRUSH_FRACTION;
  }

  function padPoint(event) {
    // The canvas keeps its own resolution; CSS scales it to the layout, so map client
    // coordinates into canvas units.
    const rect = pad.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * pad.width) / rect.width,
      y: ((event.clientY - rect.top) * pad.height) / rect.height,
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

  function onPointerDown(event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    window.clearTimeout(sendTimer);
    if (source?.kind !== "drawing") {
      // Drawing after an upload starts a new drawing.
      resetPad();
      hideUpload();
    }
    source = { kind: "drawing" };
    // Which device drew last (mouse, pen or touch): shown to nobody, read by the tests.
    pad.dataset.pointer = event.pointerType;
    const point = padPoint(event);
    stroke = { id: event.pointerId, last: point };
    dot(point);
  }

  function onPointerMove(event) {
    if (!stroke || event.pointerId !== stroke.id) return;
    event.preventDefault();
    // Coalesced events keep fast strokes smooth where the browser batches moves.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) lineTo(padPoint(e));
  }

  function onPointerUp(event) {
    if (!stroke || event.pointerId !== stroke.id) return;
    stroke = null;
    scheduleSend();
  }

  function scheduleSend() {
    window.clearTimeout(sendTimer);
    sendTimer = window.setTimeout(classifyCurrent, SEND_DELAY_MS);
  }

  function padBlob() {
    // toDataURL, not toBlob: Chromium encodes toBlob in idle time, which can add a second
    // before the answer; a 280x280 PNG encodes synchronously in a few milliseconds.
    const base64 = pad.toDataURL("image/png").split(",", 2)[1];
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new Blob([bytes], { type: "image/png" });
  }

  // ------------------------------------------------------------------ answer display

  function renderBars(labels, probabilities, winner) {
    barsEl.replaceChildren(
      ...labels.map((label, index) => {
        const p = probabilities ? probabilities[index] : 0;
        const row = document.createElement("li");
        row.className = "bar-row" + (index === winner ? " winner" : "");
        row.dataset.label = label;
        row.dataset.probability = String(p);
        const name = document.createElement("span");
        name.className = "bar-label";
        name.textContent = label;
        const track = document.createElement("span");
        track.className = "bar-track";
        const fill = document.createElement("span");
        fill.className = "bar-fill";
        fill.style.width = `${(p * 100).toFixed(1)}%`;
        track.append(fill);
        const value = document.createElement("span");
        value.className = "bar-value";
        value.textContent = probabilities ? `${(p * 100).toFixed(1)}%` : "";
        row.append(name, track, value);
        return row;
      }),
    );
  }

  function drawPrepared(pixels) {
    if (!pixels) {
      clearPrepared();
      return;
    }
    const image = preparedCtx.createImageData(28, 28);
    for (let y = 0; y < 28; y += 1) {
      for (let x = 0; x < 28; x += 1) {
        const v = Math.round(Math.min(1, Math.max(0, pixels[y][x])) * 255);
        const at = (y * 28 + x) * 4;
        image.data[at] = v;
        image.data[at + 1] = v;
        image.data[at + 2] = v;
        image.data[at + 3] = 255;
      }
    }
    preparedCtx.putImageData(image, 0, 0);
    preparedCanvas.dataset.filled = "true";
  }

  function clearPrepared() {
    preparedCtx.fillStyle = "#000000";
    preparedCtx.fillRect(0, 0, 28, 28);
    preparedCanvas.dataset.filled = "false";
  }

  function showAnswer(answer, elapsedMs) {
    const prediction = answer.predictions[0];
    const winner = answer.labels.indexOf(prediction.label);
    predictionEl.textContent = prediction.label;
    confidenceEl.textContent = `${(prediction.probability * 100).toFixed(1)}% sure`;
    renderBars(answer.labels, prediction.probabilities, winner);
    drawPrepared(answer.prepared ? answer.prepared[0] : null);
    meta.model.textContent = answer.model;
    meta.version.textContent = answer.version;
    meta.provider.textContent = answer.provider;
    meta.rtt.textContent = `${elapsedMs.toFixed(0)} ms`;
    setStatus(`Classified by ${answer.model} v${answer.version} in ${elapsedMs.toFixed(0)} ms.`);
  }

  function clearAnswer() {
    predictionEl.textContent = "";
    confidenceEl.textContent = "";
    const model = models.get(modelSelect.value);
    renderBars(model ? model.labels : [], null, -1);
    clearPrepared();
    for (const el of Object.values(meta)) el.textContent = "–";
  }

  // ------------------------------------------------------------------ talking to the server

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && typeof body.error === "string") return body.error;
    } catch {
      // Not JSON (e.g. a proxy's error page): fall back to the status line.
    }
    return response.statusText || "request failed";
  }

  async function classify(blob) {
    const seq = ++requestSeq;
    inFlight?.abort();
    const controller = new AbortController();
    inFlight = controller;
    const params = new URLSearchParams({ debug: "1" });
    if (modelSelect.value) params.set("model", modelSelect.value);
    setStatus("Classifying…", "busy");
    const started = performance.now();
    try {
      const response = await fetch(`v1/classify?${params}`, {
        method: "POST",
        headers: { "Content-Type": blob.type || "image/png" },
        body: blob,
        signal: controller.signal,
      });
      if (seq !== requestSeq) return;
      if (!response.ok) {
        const text = await errorText(response);
        if (seq !== requestSeq) return;
        clearAnswer();
        setStatus(`Error ${response.status}: ${text}`, "error");
        return;
      }
      const answer = await response.json();
      if (seq !== requestSeq) return;
      showAnswer(answer, performance.now() - started);
    } catch (error) {
      if (error.name === "AbortError" || seq !== requestSeq) return;
      clearAnswer();
      setStatus(`Cannot reach the server: ${error.message}`, "error");
    } finally {
      if (inFlight === controller) inFlight = null;
    }
  }

  async function classifyCurrent() {
    if (!source) return;
    const blob = source.kind === "upload" ? source.blob : padBlob();
    await classify(blob);
  }

  function cancelPending() {
    window.clearTimeout(sendTimer);
    requestSeq += 1;
    inFlight?.abort();
    inFlight = null;
  }

  // ------------------------------------------------------------------ models

  function describe(model) {
    if (!model.ready) return `${model.name}: not ready (${model.error || "unknown error"})`;
    const accuracy =
      typeof model.test_accuracy === "number" && model.test_accuracy > 0
        ? `, test accuracy ${(model.test_accuracy * 100).toFixed(2)}%`
        : "";
    return `${model.description || model.name} (labels: ${model.labels.join(", ")}${accuracy})`;
  }

  async function loadModels() {
    try {
      const response = await fetch("v1/models");
      if (!response.ok) throw new Error(`${response.status} ${await errorText(response)}`);
      const body = await response.json();
      models = new Map(body.models.map((m) => [m.name, m]));
      modelSelect.replaceChildren(
        ...body.models.map((m) => {
          const option = document.createElement("option");
          option.value = m.name;
          option.textContent = m.ready ? `${m.name} (v${m.version})` : `${m.name} (not ready)`;
          option.disabled = !m.ready;
          return option;
        }),
      );
      const ready = body.models.filter((m) => m.ready);
      const preferred = ready.find((m) => m.name === body.default_model) || ready[0];
      if (preferred) modelSelect.value = preferred.name;
      modelSelect.disabled = ready.length === 0;
      updateModelInfo();
      clearAnswer();
      setStatus(ready.length ? "Ready: draw a digit." : "No model is ready on this server.", ready.length ? "info" : "error");
    } catch (error) {
      setStatus(`Cannot list models: ${error.message}`, "error");
    }
  }

  function updateModelInfo() {
    const model = models.get(modelSelect.value);
    modelInfo.textContent = model ? describe(model) : "";
  }

  // ------------------------------------------------------------------ upload

  function hideUpload() {
    uploadedFigure.hidden = true;
    uploadedImg.removeAttribute("src");
    uploadedName.textContent = "";
    if (uploadUrl) URL.revokeObjectURL(uploadUrl);
    uploadUrl = "";
    uploadInput.value = "";
  }

  function useFile(file) {
    if (!file) return;
    if (!["image/png", "image/jpeg"].includes(file.type)) {
      setStatus(`${file.name}: not a PNG or JPEG image`, "error");
      return;
    }
    cancelPending();
    hideUpload();
    resetPad();
    uploadUrl = URL.createObjectURL(file);
    uploadedImg.src = uploadUrl;
    uploadedName.textContent = file.name;
    uploadedFigure.hidden = false;
    source = { kind: "upload", blob: file };
    classifyCurrent();
  }

  function onDrag(event) {
    event.preventDefault();
    dropzone.classList.toggle("dragging", event.type === "dragenter" || event.type === "dragover");
  }

  function onDrop(event) {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    useFile(event.dataTransfer?.files?.[0]);
  }

  // ------------------------------------------------------------------ wiring

  function clearAll() {
    cancelPending();
    source = null;
    stroke = null;
    resetPad();
    hideUpload();
    clearAnswer();
    setStatus("Cleared.");
  }

  pad.addEventListener("pointerdown", onPointerDown);
  pad.addEventListener("pointermove", onPointerMove);
  pad.addEventListener("pointerup", onPointerUp);
  pad.addEventListener("pointercancel", onPointerUp);
  clearButton.addEventListener("click", clearAll);
  modelSelect.addEventListener("change", () => {
    updateModelInfo();
    if (source) classifyCurrent();
    else clearAnswer();
  });
  uploadInput.addEventListener("change", () => useFile(uploadInput.files[0]));
  for (const type of ["dragenter", "dragover", "dragleave"]) dropzone.addEventListener(type, onDrag);
  dropzone.addEventListener("drop", onDrop);
  // A file dropped next to the zone must not navigate away from the page.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

  resetPad();
  clearPrepared();
  loadModels();
})();
