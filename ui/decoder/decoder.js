// Latent Explorer's in-browser decoder: a Streamlit v2 component, plain JS, no build step, no network.
//
// ui/decoder/__init__.py mounts it twice. The "weights" mount gets the decoder as raw bytes (vae/webdecoder.py
// documents the layout); Streamlit sends that unchanged element once per checkpoint, and this module parses
// it into a page-wide registry. The "panel" mount gets JSON (the point, the slider dimensions) and draws
// sliders, a 2-D pad and the decoded image, decoding on every pointer move. On release the point goes back
// to Python as the state value "z" ({version, z}); a decoder that fails here fires the trigger "failed".

const MAGIC = "LEDECOD1";
const KEEP_MODELS = 4;
const PAD_PX = 180;
const REG = (globalThis.__latentExplorerDecoders ??= {
  models: new Map(), // id -> parsed model
  waiting: new Map(), // id -> [callback(model, error)]
  error: null, // the last blob that failed to parse: {message}
  drawTimes: [], // performance.now() at the end of recent draws, for benchmarks
  drawMs: [], // how long each of those draws took (decode + pixels + canvas), ms
});

// ------------------------------------------------------------------ the decoder itself

export function parseDecoder(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (String.fromCharCode(...u8.subarray(0, MAGIC.length)) !== MAGIC) {
    throw new Error("the weights are not a Latent Explorer decoder");
  }
  const n = new DataView(u8.buffer, u8.byteOffset, u8.byteLength).getUint32(MAGIC.length, true);
  const start = MAGIC.length + 4;
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(start, start + n)));
  if (header.format !== 1) throw new Error(`decoder format ${header.format} is not supported`);
  const params = new Float32Array(u8.slice(start + n).buffer); // slice: an aligned copy
  let size = header.latent_dim;
  const layers = header.layers.map((spec) => {
    const layer = { ...spec };
    if (spec.kind === "linear") {
      if (spec.in !== size) throw new Error(`layer sizes do not chain (${size} -> ${spec.in})`);
      layer.outSize = spec.out;
    } else if (spec.kind === "deconv") {
      const [h, w] = spec.size;
      if (spec.in * h * w !== size) throw new Error(`layer sizes do not chain (${size} -> ${spec.in}x${h}x${w})`);
      layer.oh = (h - 1) * spec.stride - 2 * spec.padding + spec.kernel;
      layer.ow = (w - 1) * spec.stride - 2 * spec.padding + spec.kernel;
      layer.outSize = spec.out * layer.oh * layer.ow;
    } else {
      throw new Error(`unknown layer kind ${spec.kind}`);
    }
    if (spec.b + spec.out > params.length) throw new Error("the weights are truncated");
    layer.y = new Float32Array(layer.outSize);
    size = layer.outSize;
    return layer;
  });
  const shape = header.output_shape;
  if (shape.reduce((a, b) => a * b, 1) !== size) throw new Error("the last layer does not match the image shape");
  return { id: header.id, latentDim: header.latent_dim, shape, sigmoid: header.activation === "sigmoid", params, layers };
}

function linear(L, P, x) {
  const { in: n, out: m, w, b, relu, y } = L;
  for (let j = 0; j < m; j++) {
    let s = P[b + j];
    const row = w + j * n;
    for (let i = 0; i < n; i++) s += P[row + i] * x[i];
    y[j] = relu && s < 0 ? 0 : s;
  }
  return y;
}

function deconv(L, P, x) {
  // ConvTranspose2d as a scatter: each input value adds its kernel, scaled, into the output.
  const { in: cin, out: cout, kernel: k, stride: st, padding: pad, oh, ow, w, b, relu, y } = L;
  const [h, wd] = L.size;
  const plane = oh * ow;
  for (let co = 0; co < cout; co++) y.fill(P[b + co], co * plane, (co + 1) * plane);
  for (let ci = 0; ci < cin; ci++) {
    for (let iy = 0; iy < h; iy++) {
      for (let ix = 0; ix < wd; ix++) {
        const v = x[(ci * h + iy) * wd + ix];
        if (v === 0) continue; // after a ReLU most inputs are zero
        for (let co = 0; co < cout; co++) {
          const kbase = w + (ci * cout + co) * k * k;
          const obase = co * plane;
          for (let ky = 0; ky < k; ky++) {
            const oy = iy * st - pad + ky;
            if (oy < 0 || oy >= oh) continue;
            const orow = obase + oy * ow;
            const krow = kbase + ky * k;
            for (let kx = 0; kx < k; kx++) {
              const ox = ix * st - pad + kx;
              if (ox >= 0 && ox < ow) y[orow + ox] += v * P[krow + kx];
            }
          }
        }
      }
    }
  }
  if (relu) for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] = 0;
  return y;
}

/** The decoded item for latent vector z, (C*H*W) in [0, 1] for a Bernoulli model; a reused buffer. */
export function decode(model, z) {
  let x = z;
  for (const L of model.layers) x = L.kind === "linear" ? linear(L, model.params, x) : deconv(L, model.params, x);
  if (model.sigmoid) for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
  return x;
}

/** Decoded values (C, H, W) into RGBA bytes (H*W*4): grey for one channel, RGB for three. */
export function toRGBA(model, out, rgba) {
  const [c, h, w] = model.shape;
  const hw = h * w;
  const q = (v) => Math.round(Math.min(1, Math.max(0, v)) * 255);
  for (let i = 0; i < hw; i++) {
    const r = q(out[i]);
    rgba[4 * i] = r;
    rgba[4 * i + 1] = c === 3 ? q(out[hw + i]) : r;
    rgba[4 * i + 2] = c === 3 ? q(out[2 * hw + i]) : r;
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}

// ------------------------------------------------------------------ the registry shared by both mounts

function register(bytes) {
  let model;
  try {
    model = parseDecoder(bytes);
  } catch (e) {
    REG.error = { message: e.message };
    for (const [id, callbacks] of REG.waiting) callbacks.forEach((f) => f(null, REG.error));
    REG.waiting.clear();
    return;
  }
  REG.models.delete(model.id);
  REG.models.set(model.id, model);
  while (REG.models.size > KEEP_MODELS) REG.models.delete(REG.models.keys().next().value);
  (REG.waiting.get(model.id) || []).forEach((f) => f(model, null));
  REG.waiting.delete(model.id);
}

function whenLoaded(id, callback) {
  const model = REG.models.get(id);
  if (model) return callback(model, null);
  if (!REG.waiting.has(id)) REG.waiting.set(id, []);
  REG.waiting.get(id).push(callback);
}

// ------------------------------------------------------------------ the panel

function element(tag, className, parent) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (parent) parent.appendChild(el);
  return el;
}

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
  const t1 = performance.now();
  REG.drawTimes.push(t1);
  REG.drawMs.push(t1 - t0);
  if (REG.drawTimes.length > 4000) {
    REG.drawTimes.splice(0, 2000);
    REG.drawMs.splice(0, 2000);
  }
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
