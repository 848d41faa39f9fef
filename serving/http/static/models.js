// The model picker: filled from GET v1/models, the server's default model selected.

const $ = (id) => document.getElementById(id);

function describe(model) {
  const accuracy =
    typeof model.test_accuracy === "number" && model.test_accuracy > 0
      ? `, test accuracy ${(model.test_accuracy * 100).toFixed(2)}%`
      : "";
  return `${model.description || model.name} (labels: ${model.labels.join(", ")}${accuracy})`;
}

/** @param {{onChange: () => void}} handlers */
export function createModelPicker({ onChange }) {
  const select = $("model");
  const info = $("model-info");
  let models = new Map();

  function current() {
    return models.get(select.value);
  }

  function showInfo() {
    const model = current();
    info.textContent = model ? describe(model) : "";
  }

  /** Fill from a v1/models answer; returns the number of ready models. */
  function fill(listing) {
    models = new Map(listing.models.map((m) => [m.name, m]));
    select.replaceChildren(
      ...listing.models.map((m) => {
        const option = document.createElement("option");
        option.value = m.name;
        // A model that failed to load is listed (with why) but cannot be picked.
        option.textContent = m.ready ? `${m.name} (v${m.version})` : `${m.name} (not ready)`;
        option.title = m.ready ? describe(m) : m.error || "not ready";
        option.disabled = !m.ready;
        return option;
      }),
    );
    const ready = listing.models.filter((m) => m.ready);
    const preferred = ready.find((m) => m.name === listing.default_model) || ready[0];
    if (preferred) select.value = preferred.name;
    select.disabled = ready.length === 0;
    showInfo();
    return ready.length;
  }

  select.addEventListener("change", () => {
    showInfo();
    onChange();
  });

  return {
    fill,
    selected: () => select.value,
    labels: () => current()?.labels ?? [],
  };
}
