// Zoomed in far enough, the items themselves on the map (the Embedding Projector's sprite mode): once at most
// SPRITES_MOST points lie in the view, each is drawn as its picture, SPRITE_PX wide, centred on its place (over its
// dot); zooming out takes them away. The pictures are the map's own pixels when they travel whole, else whole ones
// asked of the server (items.js; the map's thumbnails meanwhile, when it has them).
// Appended by Python after map.js (ui/mapview/__init__.py); each picture is a layout image named by its item's row.

const SPRITES_MOST = 150;
const SPRITE_PX = 36;

/** A PNG data URL of the map's k-th item: its whole picture, else its thumbnail, else null (cached per map). */
function spriteURL(s, k) {
  if (s.spriteMap !== s.map) [s.spriteMap, s.spriteURLs] = [s.map, new Map()];
  const whole = wholePicture(s, k);
  const key = whole ? k : -1 - k;
  let url = s.spriteURLs.get(key);
  if (!url) {
    if (!whole && !s.map.pixels) return null;
    const [c, h, w] = whole ? whole.shape : s.map.itemShape;
    const size = c * h * w;
    const raw = whole ? whole.pixels : s.map.pixels.subarray(k * size, (k + 1) * size);
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [w, h];
    const image = new ImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      image.data[4 * i] = raw[i];
      image.data[4 * i + 1] = c === 3 ? raw[h * w + i] : raw[i];
      image.data[4 * i + 2] = c === 3 ? raw[2 * h * w + i] : raw[i];
      image.data[4 * i + 3] = 255;
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
    url = canvas.toDataURL("image/png");
    s.spriteURLs.set(key, url);
  }
  return url;
}

/** The layout images of the items in view when few enough are (none otherwise, or for a map without pictures). */
function spriteImages(s, data) {
  const layout = s.plot._fullLayout;
  const shape = s.map && s.map.itemShape;
  const pictured = fetchesItems(s) || (s.map.pixels && shape && shape.length === 3 && [1, 3].includes(shape[0]));
  if (!layout || s.drawn !== data.map || !pictured) return [];
  const [x0, x1] = layout.xaxis.range;
  const [y0, y1] = layout.yaxis.range;
  const inView = [];
  for (let k = 0; k < s.map.n && inView.length <= SPRITES_MOST; k++) {
    const [x, y] = [s.map.x[k], s.map.y[k]];
    if (x >= Math.min(x0, x1) && x <= Math.max(x0, x1) && y >= Math.min(y0, y1) && y <= Math.max(y0, y1)) inView.push(k);
  }
  if (inView.length > SPRITES_MOST) return [];
  askItems(s, inView, () => redrawSprites(s)); // whole pictures from the server, where the map lacks them
  const sizex = (SPRITE_PX * Math.abs(x1 - x0)) / layout.xaxis._length;
  const sizey = (SPRITE_PX * Math.abs(y1 - y0)) / layout.yaxis._length;
  const drawn = inView.filter((k) => spriteURL(s, k)); // (a picture not yet fetched stays a dot meanwhile)
  return drawn.map((k) => ({
    source: spriteURL(s, k), name: `sprite ${s.map.rows[k]}`, xref: "x", yref: "y", x: s.map.x[k], y: s.map.y[k],
    sizex, sizey, xanchor: "center", yanchor: "middle", sizing: "stretch", layer: "above",
  }));
}

/** After a zoom or a pan: the pictures of the items now in view. */
function onView(s, e) {
  if (!e || !Object.keys(e).some((key) => key.startsWith("xaxis") || key.startsWith("yaxis") || key === "autosize")) return;
  redrawSprites(s);
}

/** The pictures of the items in view, drawn afresh (once per animation frame). */
function redrawSprites(s) {
  if (s.spriteFrame) return;
  s.spriteFrame = requestAnimationFrame(() => {
    s.spriteFrame = 0;
    if (!s.data || !globalThis.Plotly) return;
    const kept = (s.plot.layout.images || []).filter((im) => !String(im.name || "").startsWith("sprite "));
    const shown = spriteImages(s, s.data);
    s.root.dataset.sprites = String(shown.length);
    globalThis.Plotly.relayout(s.plot, { images: [...kept, ...shown] });
  });
}
