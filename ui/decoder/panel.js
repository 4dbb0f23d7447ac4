// The Decode page's panel: sliders, a 2-D pad and the decoded image, decoding on every pointer move (core.js,
// prepended by Python, supplies decode / register / whenLoaded). The "panel" mount gets JSON (the point, the
// slider dimensions); on release the point goes back to Python as the state value "z" ({version, z}); a
// decoder that fails here fires the trigger "failed".

const PAD_PX = 180;

function build(root) {
  const s = { draws: 0 };
  s.root = element("div", "le", root);
  s.sliders = element("div", "le-sliders", s.root);
  const side = element("div", "le-side", s.root);
  s.canvas = element("canvas", "le-image", side);
  s.canvas.setAttribute("role", "img");
  s.canvas.setAttribute("aria-label", "decoded image");
  s.ctx = s.canvas.getContext("2d");
  s.status = element("div", "le-status", side);
  s.status.textContent = "Loading the decoder…";
  const head = element("div", "le-padhead", side);
  element("span", "", head).textContent = "Pad: ";
  s.padX = element("select", "le-axis", head);
  s.padX.setAttribute("aria-label", "pad horizontal dimension");
  element("span", "", head).textContent = " × ";
  s.padY = element("select", "le-axis", head);
  s.padY.setAttribute("aria-label", "pad vertical dimension");
  s.pad = element("canvas", "le-pad", side);
  s.pad.width = s.pad.height = PAD_PX;
  s.pad.setAttribute("aria-label", "latent pad");
  s.padX.onchange = s.padY.onchange = () => drawPad(s);
  padEvents(s);
  return s;
}

function buildSliders(s, data) {
  s.sliders.replaceChildren();
  s.inputs = new Map();
  data.dims.forEach((d, i) => {
    const row = element("label", "le-row", s.sliders);
    const name = element("span", "le-name", row);
    name.textContent = data.labels[i];
    const value = element("span", "le-value", row);
    const input = element("input", "le-range", row);
    Object.assign(input, { type: "range", min: -data.limit, max: data.limit, step: data.step });
    input.setAttribute("aria-label", data.labels[i]);
    input.dataset.dim = String(d);
    input.oninput = () => {
      s.z[d] = Number(input.value);
      value.textContent = s.z[d].toFixed(2);
      draw(s);
      drawPad(s);
    };
    input.onchange = () => commit(s);
    s.inputs.set(d, { input, value });
  });
  for (const select of [s.padX, s.padY]) {
    select.replaceChildren(...data.dims.map((d) => Object.assign(document.createElement("option"), { value: d, textContent: `z${d}` })));
  }
  s.padX.value = String(data.pad[0]);
  s.padY.value = String(data.pad[1]);
}

function syncSliders(s) {
  for (const [d, { input, value }] of s.inputs) {
    input.value = String(s.z[d]);
    value.textContent = s.z[d].toFixed(2);
  }
}

function draw(s) {
  if (!s.model) return;
  const t0 = performance.now();
  const out = decode(s.model, s.z);
  toRGBA(s.model, out, s.image.data);
  s.ctx.putImageData(s.image, 0, 0);
  s.draws += 1;
  s.root.dataset.draws = String(s.draws);
  recordDraw(t0);
}

function padValue(s, px, size) {
  return Math.max(-s.limit, Math.min(s.limit, (px / size) * 2 * s.limit - s.limit));
}

function drawPad(s) {
  const g = s.pad.getContext("2d");
  const n = PAD_PX;
  const style = getComputedStyle(s.pad);
  g.clearRect(0, 0, n, n);
  g.strokeStyle = style.getPropertyValue("--le-grid") || "#ccc";
  g.beginPath();
  g.moveTo(n / 2, 0);
  g.lineTo(n / 2, n);
  g.moveTo(0, n / 2);
  g.lineTo(n, n / 2);
  g.stroke();
  if (!s.z) return;
  const dx = Number(s.padX.value);
  const dy = Number(s.padY.value);
  const x = ((Math.max(-s.limit, Math.min(s.limit, s.z[dx])) + s.limit) / (2 * s.limit)) * n;
  const y = n - ((Math.max(-s.limit, Math.min(s.limit, s.z[dy])) + s.limit) / (2 * s.limit)) * n;
  g.fillStyle = style.getPropertyValue("--le-dot") || "#ff4b4b";
  g.beginPath();
  g.arc(x, y, 6, 0, 2 * Math.PI);
  g.fill();
}

function padEvents(s) {
  let dragging = false;
  const move = (e) => {
    const r = s.pad.getBoundingClientRect();
    const dx = Number(s.padX.value);
    const dy = Number(s.padY.value);
    s.z[dx] = padValue(s, e.clientX - r.left, r.width);
    s.z[dy] = -padValue(s, e.clientY - r.top, r.height);
    syncSliders(s);
    draw(s);
    drawPad(s);
  };
  s.pad.onpointerdown = (e) => {
    if (!s.z) return;
    dragging = true;
    s.pad.setPointerCapture(e.pointerId);
    move(e);
  };
  s.pad.onpointermove = (e) => dragging && move(e);
  s.pad.onpointerup = s.pad.onpointercancel = () => {
    if (!dragging) return;
    dragging = false;
    commit(s);
  };
}

function commit(s) {
  s.setStateValue("z", { version: s.version, z: Array.from(s.z) });
}

function fail(s, message) {
  s.status.textContent = `The browser could not run this decoder: ${message}.`;
  s.status.classList.add("le-error");
  s.setTriggerValue("failed", message);
}

function panel({ data, parentElement, setStateValue, setTriggerValue }) {
  let s = parentElement.__latentDecoder;
  if (!s) s = parentElement.__latentDecoder = build(parentElement);
  Object.assign(s, { setStateValue, setTriggerValue, limit: data.limit });
  if (s.dimsKey !== JSON.stringify([data.dims, data.labels])) {
    s.dimsKey = JSON.stringify([data.dims, data.labels]);
    buildSliders(s, data);
  }
  if (s.id !== data.id || s.version !== data.version) {
    s.z = Float32Array.from(data.z); // a new point from Python (start, reset, random); otherwise keep the browser's
    s.version = data.version;
  }
  s.id = data.id;
  s.canvas.style.width = s.canvas.style.height = `${data.px}px`;
  syncSliders(s);
  drawPad(s);
  whenLoaded(data.id, (model, error) => {
    if (error) return fail(s, error.message);
    if (s.id !== model.id) return;
    if (s.model !== model) {
      s.model = model;
      const [, h, w] = model.shape;
      s.canvas.width = w;
      s.canvas.height = h;
      s.image = s.ctx.createImageData(w, h);
      s.status.textContent = "Decoded in your browser while you drag; released values go to the server.";
    }
    try {
      draw(s);
    } catch (e) {
      fail(s, e.message);
    }
  });
}

export default function (component) {
  if (component.data instanceof Uint8Array) return register(component.data);
  return panel(component);
}
