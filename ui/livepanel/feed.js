// Shared by the Train page's live components (livepanel.js, ../livemap/livemap.js), put before each one's code.

/** Poll the run's feed: ask ``s.ask()`` now and every ``s.every`` ms while ``s.el`` is on the page, handing each
 * reply to ``s.take(reply)`` and each failure to ``s.failed(error)``; a hidden tab asks nothing (``s.resume``
 * asks again at once when it shows). A new mount (``s.feed`` changed meanwhile) polls on its own. */
async function pollFeed(s) {
  clearTimeout(s.timer);
  const feed = s.feed;
  if (!feed || !s.el.isConnected) return;
  if (!document.hidden) {
    try {
      const reply = await fetch(s.ask(), { cache: "no-store" });
      if (feed !== s.feed) return;
      await s.take(reply);
    } catch (e) {
      s.failed(e);
    }
  }
  s.timer = setTimeout(() => pollFeed(s), s.every);
}

/** Start polling when the tab shows again (once per component). */
function pollOnShow(s) {
  document.addEventListener("visibilitychange", () => !document.hidden && pollFeed(s));
}

/** A canvas sized to ``width`` × ``height`` CSS pixels at this screen's pixel ratio, cleared; its 2-D context. */
function sizedCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

/** A new ``tag`` element of class ``className`` (with ``text``), appended to ``parent``. */
function element(tag, className, parent, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
