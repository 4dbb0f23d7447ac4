// A large map's items' whole pictures, asked of the server a few at a time and kept in the page (ui/served.py):
// past 10,000 items a map's pixels do not travel with it (thumbnails, or nothing), so the item under the pointer
// and the items in view when zoomed in (sprites.js) are fetched by HTTP, ITEMS_BATCH rows a request, in a few
// milliseconds, and the page keeps the last ITEMS_KEPT. Appended by Python after map.js (ui/mapview/__init__.py).

const ITEMS_BATCH = 64; // ui/served.py's MOST_ROWS
const ITEMS_KEPT = 4096;

/** The item store of the map on screen (a new map starts an empty one). */
function itemStore(s) {
  if (!s.itemStore || s.itemStore.map !== s.map.id) {
    s.itemStore = { map: s.map.id, got: new Map(), asked: new Set(), failed: new Set(), fetched: 0 };
  }
  return s.itemStore;
}

/** Whether the map's own pixels are its items' whole pictures (not thumbnails, not absent). */
const sentWhole = (map) => !!(map.pixels && map.itemShape && map.pixelScale === 1);

/** Drawn point k's whole picture {shape: [C, H, W], pixels: Uint8Array} when the page holds it: the map's own
 * pixels when they travelled whole, else one fetched from the server; null otherwise. */
function wholePicture(s, k) {
  const map = s.map;
  if (sentWhole(map)) {
    const size = map.itemShape.reduce((a, b) => a * b, 1);
    return { shape: map.itemShape, pixels: map.pixels.subarray(k * size, (k + 1) * size) };
  }
  return fetchesItems(s) ? itemStore(s).got.get(map.rows[k]) || null : null;
}

/** Whether this map's whole pictures come from the server (the map's blob lacks them). */
function fetchesItems(s) {
  return !!(s.data && s.data.items && s.map && !sentWhole(s.map));
}

/** Ask the server for drawn points ``ks``'s pictures the page lacks; ``done()`` after each answer that brought
 * some. A row is asked once at a time, and never again on this map once its answer failed (a click still shows
 * the item, through the page). */
function askItems(s, ks, done) {
  if (!fetchesItems(s)) return;
  const store = itemStore(s);
  const rows = [...new Set(ks.map((k) => s.map.rows[k]))].filter((r) => !store.got.has(r) && !store.asked.has(r) && !store.failed.has(r));
  for (let i = 0; i < rows.length; i += ITEMS_BATCH) {
    const batch = rows.slice(i, i + ITEMS_BATCH);
    batch.forEach((r) => store.asked.add(r));
    const query = new URLSearchParams({ map: store.map, rows: batch.join(",") });
    fetch(`${s.data.items}?${query}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`${r.status}`))))
      .then((buffer) => {
        const head = new DataView(buffer, 0, 16);
        const [n, c, h, w] = [0, 4, 8, 12].map((o) => head.getUint32(o, true));
        const size = c * h * w;
        if (n !== batch.length || buffer.byteLength !== 16 + n * size) throw new Error("a malformed answer");
        batch.forEach((r, j) => {
          store.got.delete(r); // re-inserted last: the map keeps the rows asked most recently
          store.got.set(r, { shape: [c, h, w], pixels: new Uint8Array(buffer, 16 + j * size, size) });
        });
        while (store.got.size > ITEMS_KEPT) store.got.delete(store.got.keys().next().value);
        store.fetched += n;
        if (s.itemStore === store) {
          s.root.dataset.itemsFetched = String(store.fetched);
          if (done) done();
        }
      })
      .catch(() => batch.forEach((r) => store.failed.add(r))) // not asked again: the thumbnail or name stays
      .finally(() => batch.forEach((r) => store.asked.delete(r)));
  }
}
