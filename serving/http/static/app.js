// The draw-a-digit page: a drawing pad and a photo upload, classified by this server's
// POST /v1/classify. Plain browser JavaScript modules: no build step, nothing from elsewhere.
import { createAnswer } from "./answer.js";
import { classify, listModels, readNumber } from "./api.js";
import { createExplain } from "./explain.js";
import { createFeedback } from "./feedback.js";
import { createModelPicker } from "./models.js";
import { createPad } from "./pad.js";
import { createReadView } from "./read.js";
import { createUpload } from "./upload.js";

// Wait after a stroke ends before sending, so a digit drawn in several strokes ("4", a "7"
// with a bar) is sent once, when the pen rests.
const SEND_DELAY_MS = 150;

const answer = createAnswer();
const feedback = createFeedback();
const reader = createReadView();
// What the current answer is about: null (nothing), {kind: "drawing"} or
// {kind: "upload", blob}. Switching models re-classifies it.
let source = null;
let sendTimer = 0;
// Each classification gets a number; an answer that is not for the latest one is dropped (a
// slow reply must not overwrite a newer drawing's answer or a cleared page).
let requestSeq = 0;
let inFlight = null;

function cancelPending() {
  window.clearTimeout(sendTimer);
  requestSeq += 1;
  inFlight?.abort();
  inFlight = null;
}

async function classifyCurrent() {
  if (!source) return;
  cancelPending();
  const seq = requestSeq;
  const controller = new AbortController();
  inFlight = controller;
  const blob = source.kind === "upload" ? source.blob : pad.toPng();
  answer.setStatus(reader.enabled() ? "Reading\u2026" : "Classifying\u2026", "busy");
  try {
    if (reader.enabled()) {
      const { answer: result, elapsedMs } = await readNumber(blob, picker.selected(), controller.signal);
      if (seq !== requestSeq) return;
      await reader.show(result, blob);
      answer.reset(picker.labels());
      explanation.clear();
      feedback.hide();
      answer.setStatus(
        `Read ${result.digits.length} digit(s) with ${result.model} v${result.version} in ${elapsedMs.toFixed(0)} ms.`,
      );
      return;
    }
    const { answer: result, elapsedMs } = await classify(
      blob,
      picker.selected(),
      controller.signal,
      explanation.enabled(),
    );
    if (seq === requestSeq) {
      answer.show(result, elapsedMs);
      explanation.show(result.predictions[0].saliency);
      feedback.offer(result);
    }
  } catch (error) {
    if (error.name === "AbortError" || seq !== requestSeq) return;
    answer.reset(picker.labels());
    explanation.clear();
    feedback.hide();
    reader.reset();
    const text = error.status
      ? `Error ${error.status}: ${error.message}`
      : `Cannot reach the server: ${error.message}`;
    answer.setStatus(text, "error");
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

const pad = createPad(document.getElementById("pad"), {
  onStrokeStart() {
    window.clearTimeout(sendTimer);
    if (source?.kind !== "drawing") {
      // Drawing after an upload (or a clear) starts a new drawing.
      pad.clear();
      upload.hide();
    }
    source = { kind: "drawing" };
  },
  onStrokeEnd() {
    window.clearTimeout(sendTimer);
    sendTimer = window.setTimeout(classifyCurrent, SEND_DELAY_MS);
  },
});

const upload = createUpload({
  onFile(file) {
    pad.clear();
    source = { kind: "upload", blob: file };
    classifyCurrent();
  },
  onRefused(message) {
    answer.setStatus(message, "error");
  },
});

const picker = createModelPicker({
  onChange() {
    if (source) classifyCurrent();
    else answer.reset(picker.labels());
  },
});

// Turning explain on (or off) asks again for the answer on screen.
const explanation = createExplain({
  onToggle() {
    if (source) classifyCurrent();
    else explanation.clear();
  },
});

document.getElementById("clear").addEventListener("click", () => {
  cancelPending();
  explanation.clear();
  source = null;
  pad.clear();
  upload.hide();
  answer.reset(picker.labels());
  feedback.hide();
  reader.reset();
  answer.setStatus("Cleared.");
});

async function start() {
  answer.reset([]);
  try {
    const ready = picker.fill(await listModels());
    answer.reset(picker.labels());
    if (ready) answer.setStatus("Ready: draw a digit.");
    else answer.setStatus("No model is ready on this server.", "error");
  } catch (error) {
    answer.setStatus(`Cannot list models: ${error.message}`, "error");
  }
}

start();

// Switching between one digit and a whole number answers the current image the new way.
reader.onToggle(() => {
  if (source) classifyCurrent();
});
