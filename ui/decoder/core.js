// Latent Explorer's in-browser decoder, shared by the Decode panel (panel.js) and the Explore map
// (ui/mapview/map.js): plain JS, no build step, no network. Python prepends this file to each component's
// own module (ui/decoder/__init__.py, ``module``), so both read one page-wide registry of parsed decoders.
//
// The decoder arrives as raw bytes (vae/web/decoder.py documents the layout) in a mount of its own; Streamlit
// sends that unchanged element once per checkpoint, and ``register`` parses it into the registry.

const MAGIC = "LEDECOD1";
const KEEP_MODELS = 4;
export const REG = (globalThis.__latentExplorerDecoders ??= {
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

export function register(bytes) {
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

export function whenLoaded(id, callback) {
  const model = REG.models.get(id);
  if (model) return callback(model, null);
  if (!REG.waiting.has(id)) REG.waiting.set(id, []);
  REG.waiting.get(id).push(callback);
}

// ------------------------------------------------------------------ shared by the panels

/** Note a draw that began at ``t0`` (performance.now()) for the benchmarks: its end and its duration. */
export function recordDraw(t0) {
  const t1 = performance.now();
  REG.drawTimes.push(t1);
  REG.drawMs.push(t1 - t0);
  if (REG.drawTimes.length > 4000) {
    REG.drawTimes.splice(0, 2000);
    REG.drawMs.splice(0, 2000);
  }
}

export function element(tag, className, parent) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (parent) parent.appendChild(el);
  return el;
}
