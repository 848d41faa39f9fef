// Photo upload: a file picker and a drop zone, and the uploaded image's preview.

const $ = (id) => document.getElementById(id);
const IMAGE_TYPES = ["image/png", "image/jpeg"];

/**
 * @param {{onFile: (file: File) => void, onRefused: (message: string) => void}} handlers
 */
export function createUpload({ onFile, onRefused }) {
  const input = $("upload");
  const zone = $("dropzone");
  const figure = $("uploaded-figure");
  const img = $("uploaded");
  const caption = $("uploaded-name");
  let url = "";

  function hide() {
    figure.hidden = true;
    img.removeAttribute("src");
    caption.textContent = "";
    if (url) URL.revokeObjectURL(url);
    url = "";
    input.value = "";
  }

  function show(file) {
    hide();
    url = URL.createObjectURL(file);
    img.src = url;
    caption.textContent = file.name;
    figure.hidden = false;
  }

  function take(file) {
    if (!file) return;
    if (!IMAGE_TYPES.includes(file.type)) {
      onRefused(`${file.name}: not a PNG or JPEG image`);
      return;
    }
    show(file);
    onFile(file);
  }

  input.addEventListener("change", () => take(input.files[0]));
  for (const type of ["dragenter", "dragover", "dragleave"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.toggle("dragging", type !== "dragleave");
    });
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    take(event.dataTransfer?.files?.[0]);
  });
  // A file dropped next to the zone must not navigate away from the page.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

  return { hide };
}
