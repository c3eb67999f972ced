// The page's whole logic: draw on the canvas, send it (debounced) or an uploaded photo to
// /api/predict, and show the answer. No framework and nothing fetched from the internet.
"use strict";

const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const DEBOUNCE_MS = 150;
let drawing = false;
let timer = null;
let sent = 0;  // answers to older requests than the newest shown are dropped
let collecting = false;  // serve --collect: the page offers to store corrections
let last = null;  // the picture last answered and the answer: what a correction is about

function clearCanvas() {
  clearTimeout(timer);
  sent++;  // an answer still on its way belongs to the old drawing
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  showIdle("Draw with the mouse or a finger.");
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  forgetAnswer();  // a correction pressed from now on is for the new drawing, once it is answered
  canvas.setPointerCapture(event.pointerId);
  const [x, y] = point(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x + 0.1, y);
  stroke();
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = point(event);
  pen.lineTo(x, y);
  stroke();
});
for (const name of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(name, () => { drawing = false; });
}

function stroke() {
  pen.strokeStyle = "#000";
  pen.lineWidth = 18;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.stroke();
  clearTimeout(timer);
  timer = setTimeout(() => canvas.toBlob((blob) => send(blob, "image/png")), DEBOUNCE_MS);
}

async function send(body, type) {
  const ticket = ++sent;
  try {
    const response = await fetch("/api/predict?image=1", { method: "POST", body, headers: { "Content-Type": type } });
    const answer = await response.json();
    if (ticket !== sent) return;
    if (!response.ok) { showIdle(inWords(response.status, answer.error || "")); return; }
    show(answer);
    last = answer.digit === null ? null : { body, type, answer };
    offerCorrection();
  } catch (error) {
    if (ticket === sent) showIdle(`no answer from the server (${error})`);
  }
}

// The API's errors are one line for scripts ("body: not a readable image (formats read: ...)");
// a person at the page gets what happened and what to do.
function inWords(status, error) {
  if (status === 400 && error.includes("not a readable image"))
    return "That file is not a picture this page can read: send a photo or drawing as PNG, JPEG, GIF, BMP, WebP, TIFF or PGM.";
  if (status === 400 && error.includes("too large to read"))
    return "That picture is too large for this device to read: send a smaller one.";
  if (status === 400 && error.includes("empty")) return "That file is empty.";
  if (status === 413) return "That file is too big to send here: send a smaller one.";
  if (status === 408) return "The upload took too long: try again.";
  if (status === 503) return "The server is busy: try again in a moment.";
  if (status === 507) return "The collection is full: " + error.replace(/^collection full: /, "") + ". Answers go on.";
  return `The server could not answer (${status}): ${error}`;
}

function percent(value) { return value > 0 && value < 0.001 ? "<0.1%" : `${(100 * value).toFixed(1)}%`; }

function showIdle(message) {
  last = null;
  offerCorrection();
  document.getElementById("digit").textContent = "–";
  document.getElementById("digit").classList.remove("unsure");
  document.getElementById("confidence").textContent = message;
  document.getElementById("runner-up").textContent = "";
  document.getElementById("bars").replaceChildren();
  document.getElementById("seen").removeAttribute("src");
  document.getElementById("seen-box").hidden = true;  // no broken image before the first answer
  document.getElementById("scores-note").hidden = true;
  document.getElementById("timing").textContent = "";
}

function show(answer) {
  const digit = document.getElementById("digit");
  digit.classList.toggle("unsure", !answer.sure);
  if (answer.digit === null) { showIdle("Nothing to read: " + answer.doubt); return; }
  digit.textContent = answer.sure ? String(answer.digit) : "?";
  document.getElementById("confidence").textContent = answer.sure
    ? `${answer.digit} with confidence ${percent(answer.confidence)}`
    : `Not sure (best guess ${answer.digit}): ${answer.doubt}`;
  document.getElementById("runner-up").textContent = `runner-up: ${answer.runner_up} (${percent(answer.runner_up_confidence)})`;
  const bars = document.getElementById("bars");
  bars.replaceChildren(...answer.scores.map((score, d) => {
    const item = document.createElement("li");
    if (d === answer.digit) item.className = "best";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = String(d);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(160 * score)}px`;  // a style property: the CSP refuses style attributes
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(score);
    item.append(label, bar, value);
    return item;
  }));
  if (answer.mnist_image_png) {
    document.getElementById("seen").src = "data:image/png;base64," + answer.mnist_image_png;
    document.getElementById("seen-box").hidden = false;
  }
  document.getElementById("scores-note").hidden = !document.getElementById("scores-note").textContent;
  document.getElementById("timing").textContent =
    `preprocessing ${answer.ms.preprocess.toFixed(1)} ms, inference ${answer.ms.inference.toFixed(2)} ms, on the server`;
}

// --- corrections (serve --collect): "right", or the digit it was, or "not a digit" -------------

function offerCorrection() {
  document.getElementById("teach").hidden = !collecting;
  document.getElementById("teach-buttons").hidden = !(collecting && last);
  document.getElementById("right").hidden = !(last && last.answer.sure);
}

function forgetAnswer() {
  sent++;  // an answer still on its way is for the picture before
  last = null;
  offerCorrection();
  document.getElementById("teach-result").textContent = "";
}

async function teach(label) {
  if (!collecting || !last) return;
  const { body, type } = last;
  last = null;
  offerCorrection();
  const result = document.getElementById("teach-result");
  result.textContent = "Storing…";
  try {
    const response = await fetch(`/api/samples?label=${label}`, { method: "POST", body, headers: { "Content-Type": type } });
    const stored = await response.json();
    if (!response.ok) { result.textContent = inWords(response.status, stored.error || ""); return; }
    const said = label === "n" ? "not a digit" : label;
    result.textContent = `Stored as ${said}: thank you.`;
    showCollecting(stored.collect);
  } catch (error) {
    result.textContent = `not stored: no answer from the server (${error})`;
  }
}

function showCollecting(state) {
  document.getElementById("teach-state").textContent = state.full
    ? `Collection full (${state.why}): answers go on, corrections are not stored.`
    : `Collecting corrections: a picture you mark is stored on this device to train a better model (${state.stored.toLocaleString()} of ${state.max.toLocaleString()} stored).`;
}

const digitButtons = document.getElementById("digits");
for (const label of [..."0123456789", "n"]) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label === "n" ? "not a digit" : label;
  button.dataset.label = label;
  button.addEventListener("click", () => teach(label));
  digitButtons.append(button);
}
document.getElementById("right").addEventListener("click", () => { if (last) teach(String(last.answer.digit)); });
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^[0-9n]$/.test(event.key)) teach(event.key);
});

document.getElementById("clear").addEventListener("click", clearCanvas);
// A phone photo (12 to 48 megapixels, several MB) is shrunk here before it is sent: the digit
// needs far fewer pixels, the upload is quick on Wi-Fi, and the Pi decodes a small picture. JPEG
// photos become JPEG; anything else (a PNG may be transparent) becomes PNG. The server keeps its
// own limits whatever arrives.
const UPLOAD_SIDE = 1024;

async function shrunk(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (error) {
    return { body: file, type: file.type || "application/octet-stream" };  // the server says why
  }
  const scale = Math.min(1, UPLOAD_SIDE / Math.max(bitmap.width, bitmap.height));
  if (scale === 1 && file.size < 1024 * 1024) {
    bitmap.close();
    return { body: file, type: file.type || "application/octet-stream" };
  }
  const small = document.createElement("canvas");
  small.width = Math.max(1, Math.round(bitmap.width * scale));
  small.height = Math.max(1, Math.round(bitmap.height * scale));
  small.getContext("2d").drawImage(bitmap, 0, 0, small.width, small.height);
  bitmap.close();
  const type = file.type === "image/jpeg" ? "image/jpeg" : "image/png";
  const body = await new Promise((done) => small.toBlob(done, type, 0.9));
  return { body, type };
}

// The file input itself is hidden behind its label: Enter or Space on the label opens it, so the
// upload works from the keyboard too.
document.getElementById("upload").addEventListener("keydown", (event) => {
  if (event.key !== "Enter" && event.key !== " ") return;
  event.preventDefault();
  event.stopPropagation();
  document.getElementById("file").click();
});

document.getElementById("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  forgetAnswer();
  showIdle("Reading the photo…");
  const { body, type } = await shrunk(file);
  send(body, type);
});

fetch("/api/model").then((r) => r.json()).then((m) => {
  const accuracy = m.manifest_accuracy == null ? "no manifest figure" : `manifest accuracy ${percent(m.manifest_accuracy)}`;
  document.getElementById("model").textContent = `Answering: ${m.file} on ${m.backend} (${accuracy}).`;
  document.getElementById("scores-note").textContent = {
    independent: "Each bar is the model's score for that digit on its own (a sigmoid per digit), so together they can pass 100%.",
    "sum to one": "The ten scores add up to 100% (softmax).",
  }[m.scores] || "";
  collecting = Boolean(m.collect && m.collect.on);
  if (collecting) showCollecting(m.collect);
  offerCorrection();
}).catch(() => { document.getElementById("model").textContent = "model information unavailable"; });

clearCanvas();
