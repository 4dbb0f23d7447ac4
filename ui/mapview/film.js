// Draw a path, get a film (the Explore map's "Draw open freeform" tool in its mode bar): the path drawn on the map is
// cut into FILM_FRAMES spots evenly spaced along it, each spot goes through the inverse grid (``lookup``) and the
// decoder, and the pictures play in a loop in a panel over the map's
// bottom-left corner. The spots go to Python as the state value
// "film" ({map, xy, n}), which offers the same frames, decoded by torch, as a GIF. Appended by Python after map.js
// (ui/mapview/__init__.py), it uses map.js's ``lookup`` and ``element`` and core.js's decoder.

const FILM_FRAMES = 32;
const FILM_FPS = 8;

/** The (x, y) points of a Plotly path shape ("M1,2L3,4..." in data coordinates). */
function pathPoints(path) {
  const number = "-?(?:\\d+\\.?\\d*|\\.\\d+)(?:e[-+]?\\d+)?";
  const pairs = String(path).match(new RegExp(`${number},${number}`, "gi")) || [];
  return pairs.map((pair) => pair.split(",").map(Number)).filter(([x, y]) => Number.isFinite(x + y));
}

/** ``n`` points evenly spaced along the polyline ``points`` by its length (its ends included). */
function alongPath(points, n) {
  const lengths = [0];
  for (let i = 1; i < points.length; i++) {
    const [[x0, y0], [x1, y1]] = [points[i - 1], points[i]];
    lengths.push(lengths[i - 1] + Math.hypot(x1 - x0, y1 - y0));
  }
  const total = lengths[lengths.length - 1];
  const out = [];
  let seg = 1;
  for (let k = 0; k < n; k++) {
    const at = (total * k) / (n - 1);
    while (seg < points.length - 1 && lengths[seg] < at) seg++;
    const span = lengths[seg] - lengths[seg - 1];
    const t = span > 0 ? Math.min(1, Math.max(0, (at - lengths[seg - 1]) / span)) : 0;
    const [[x0, y0], [x1, y1]] = [points[seg - 1], points[seg]];
    out.push([x0 + t * (x1 - x0), y0 + t * (y1 - y0)]);
  }
  return out;
}

function filmElements(s) {
  if (s.filmCanvas) return;
  const side = element("div", "lem-side lem-filmbox", s.root); // over the plot's bottom-left corner
  s.filmBox = side;
  s.filmHead = element("div", "lem-head", side);
  s.filmCanvas = element("canvas", "lem-image lem-film", side);
  s.filmCanvas.setAttribute("role", "img");
  s.filmCanvas.setAttribute("aria-label", "the decoder's pictures along the drawn path");
  s.filmCanvas.style.width = s.filmCanvas.style.height = `${PREVIEW_PX}px`;
  s.filmCaption = element("div", "lem-caption", side);
}

function stopFilm(s) {
  clearInterval(s.filmTimer);
  s.film = null;
  if (s.filmBox) s.filmBox.hidden = true;
  if (s.plot.__lem) s.plot.__lem.film = null;
}

/** The film of the path ``shape`` drawn on map ``s``: its frames decoded here, played, and its spots sent to Python. */
function makeFilm(s, shape) {
  const drawn = pathPoints(shape.path);
  if (drawn.length < 2 || !s.map || !s.model) return;
  const points = alongPath(drawn, FILM_FRAMES);
  const [, h, w] = s.model.shape;
  const z = new Float32Array(s.map.latentDim);
  const frames = points.map(([x, y]) => {
    const image = new ImageData(w, h);
    toRGBA(s.model, decode(s.model, lookup(s.map, x, y, z)), image.data);
    return image;
  });
  stopFilm(s);
  filmElements(s);
  s.film = { path: shape.path, points, frames, shape: { ...shape } };
  s.plot.__lem.film = { points, frames }; // for tests: the spots and their pictures (ImageData)
  s.filmHead.textContent = "Along your path";
  s.filmBox.hidden = false;
  [s.filmCanvas.width, s.filmCanvas.height] = [w, h];
  let k = 0;
  const show = () => {
    s.filmCanvas.getContext("2d").putImageData(frames[k], 0, 0);
    s.filmCaption.textContent = `frame ${k + 1} of ${frames.length}`;
    k = (k + 1) % frames.length;
  };
  show();
  s.filmTimer = setInterval(show, 1000 / FILM_FPS);
  s.films = (s.films || 0) + 1;
  s.root.dataset.films = String(s.films);
  s.setStateValue("film", { map: s.map.id, xy: points, n: s.films });
}

/** A shape drawn on the map (Plotly's relayout event): the newest path makes the film, and stays the only one. */
function onShapes(s, e) {
  if (!e || !Array.isArray(e.shapes)) return;
  const paths = e.shapes.filter((shape) => shape && shape.type === "path" && shape.path);
  const newest = paths[paths.length - 1];
  if (!newest || (s.film && newest.path === s.film.path && e.shapes.length === 1)) return;
  makeFilm(s, newest);
  globalThis.Plotly.relayout(s.plot, { shapes: [newest] }); // the earlier paths go
}

/** The film's path, drawn again when the map is redrawn (Plotly.react keeps only the shapes the layout names). */
function filmShapes(s, data) {
  return s.film && s.drawn === data.map ? [s.film.shape] : [];
}
