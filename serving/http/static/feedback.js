// Under each answer: "Right" and "Wrong, it is: ..." buttons that send POST v1/feedback with
// the answer's request id, a visible confirmation, and the live quality line per model from
// GET v1/feedback/stats (rated answers, corrections, accuracy).
import { feedbackStats, sendFeedback } from "./api.js";

const $ = (id) => document.getElementById(id);

export function createFeedback() {
  const box = $("feedback");
  const right = $("feedback-right");
  const wrong = $("feedback-wrong");
  const confirmation = $("feedback-confirmation");
  const quality = $("quality");
  // The answer the buttons are about: {request_id, predicted, labels}.
  let current = null;

  function buttons() {
    return [right, ...wrong.querySelectorAll("button")];
  }

  function setBusy(busy) {
    for (const button of buttons()) button.disabled = busy;
  }

  function confirm(text, kind) {
    confirmation.textContent = text;
    confirmation.dataset.kind = kind;
  }

  /** Offer feedback on a /v1/classify answer (its first image). */
  function offer(answer) {
    const predicted = answer.predictions[0].label;
    current = { request_id: answer.request_id, predicted, labels: answer.labels };
    wrong.replaceChildren(
      ...answer.labels
        .filter((label) => label !== predicted)
        .map((label) => {
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = label;
          button.dataset.label = label;
          button.dataset.testid = `feedback-label-${label}`;
          button.addEventListener("click", () => send({ label }));
          return button;
        }),
    );
    confirm("", "info");
    setBusy(false);
    box.hidden = false;
  }

  function hide() {
    current = null;
    box.hidden = true;
    confirm("", "info");
  }

  async function send(choice) {
    if (!current) return;
    const about = current;
    setBusy(true);
    confirm("Sending\u2026", "busy");
    try {
      const receipt = await sendFeedback({ request_id: about.request_id, ...choice });
      if (about !== current) return;
      confirm(
        receipt.verdict === "correct"
          ? `Thanks: stored as right (record ${receipt.id}).`
          : `Thanks: stored as ${receipt.label}, not ${receipt.predicted} (record ${receipt.id}).`,
        "ok",
      );
      refreshQuality();
    } catch (error) {
      if (about === current) confirm(`Not stored: ${error.message}`, "error");
    } finally {
      if (about === current) setBusy(false);
    }
  }

  /** The live quality line: one entry per model version people rated. */
  async function refreshQuality() {
    try {
      const stats = await feedbackStats();
      if (!stats.models.length) {
        quality.textContent = "No feedback yet.";
        return;
      }
      quality.replaceChildren(
        ...stats.models.map((row) => {
          const item = document.createElement("li");
          item.dataset.testid = `quality-${row.model}`;
          item.dataset.answers = String(row.answers);
          item.dataset.corrected = String(row.corrected);
          const accuracy = row.accuracy === null ? "\u2013" : `${(row.accuracy * 100).toFixed(1)}%`;
          item.textContent =
            `${row.model} v${row.version}: ${row.answers} rated, ` +
            `${row.corrected} corrected, accuracy ${accuracy}`;
          return item;
        }),
      );
    } catch (error) {
      quality.textContent = `Live quality unavailable: ${error.message}`;
    }
  }

  right.addEventListener("click", () => send({ correct: true }));
  hide();
  refreshQuality();
  return { offer, hide };
}
