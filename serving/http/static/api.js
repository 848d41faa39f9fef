// The server's typed HTTP endpoints, as the page uses them. URLs are relative, so the page
// also works behind a proxy that serves it under a path prefix.

/** An HTTP error answer: the status and the server's `{"error": ...}` message. */
export class ServerError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
  } catch {
    // Not JSON (e.g. a proxy's error page): fall back to the status text.
  }
  return response.statusText || "request failed";
}

async function json(response) {
  if (!response.ok) throw new ServerError(response.status, await errorText(response));
  return response.json();
}

/** GET v1/models: `{default_model, models: [...]}`. */
export async function listModels() {
  return json(await fetch("v1/models"));
}

/**
 * POST one PNG/JPEG to v1/classify with the prepared 28x28 pixels (debug=1), and with
 * `explain` a 28x28 saliency map per prediction.
 * @returns {Promise<{answer: object, elapsedMs: number}>}
 */
export async function classify(blob, model, signal, explain = false) {
  const params = new URLSearchParams({ debug: "1" });
  if (model) params.set("model", model);
  if (explain) params.set("explain", "1");
  return postImage("v1/classify", params, blob, signal);
}

/** POST an image body; the JSON answer and the round-trip time. */
async function postImage(path, params, blob, signal) {
  const started = performance.now();
  const response = await fetch(`${path}?${params}`, {
    method: "POST",
    headers: { "Content-Type": blob.type || "image/png" },
    body: blob,
    signal,
  });
  const answer = await json(response);
  return { answer, elapsedMs: performance.now() - started };
}

/** POST v1/feedback: `{request_id, label}` or `{request_id, correct: true}`; the receipt. */
export async function sendFeedback(body) {
  return json(
    await fetch("v1/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

/** GET v1/feedback/stats: rated answers, corrections and accuracy per model version. */
export async function feedbackStats() {
  return json(await fetch("v1/feedback/stats"));
}

/**
 * POST one PNG/JPEG to v1/read: every digit in reading order, with boxes.
 * @returns {Promise<{answer: object, elapsedMs: number}>}
 */
export async function readNumber(blob, model, signal) {
  const params = new URLSearchParams();
  if (model) params.set("model", model);
  return postImage("v1/read", params, blob, signal);
}
