// One browser-history entry per page visit, holding that page's view.
//
// Streamlit pushes a history entry for every change of the URL's query parameters (each widget bound to the URL,
// each link the pages keep there) and, on a page switch, first one for the old page without its parameters, so
// Back after "Open in Decode" took three presses and reached Explore without its view. Here a change on the same
// page replaces the entry instead, and a page switch leaves the old entry holding the view it showed: Back
// returns to it in one press. Installed once per browser tab, by the frame (app.py) on every page.

const HISTORY = (globalThis.__latentExplorerHistory ??= { installed: false });

const SETTLED_MS = 400; // a page switch first drops the old page's parameters, within milliseconds

function install() {
  if (HISTORY.installed) return;
  HISTORY.installed = true;
  const push = history.pushState.bind(history);
  const replace = history.replaceState.bind(history);
  let views = [{ url: location.href, at: 0 }]; // this entry's URLs as the page set them, with when
  const samePage = (url) => new URL(url, location.href).pathname === location.pathname;
  const remember = (url) => views.push({ url: new URL(url, location.href).href, at: performance.now() });
  const settled = () => { // the URL as it stood before the switch began: the view the page showed
    const now = performance.now();
    return [...views].reverse().find((v) => now - v.at > SETTLED_MS)?.url ?? views[0].url;
  };
  history.pushState = function (state, title, url) {
    if (url === undefined || url === null) return push(state, title, url);
    if (samePage(url)) {
      remember(url);
      return replace(state, title, url);
    }
    replace(history.state, "", settled());
    const out = push(state, title, url);
    views = [{ url: new URL(url, location.href).href, at: performance.now() }];
    return out;
  };
  history.replaceState = function (state, title, url) {
    if (url !== undefined && url !== null && samePage(url)) remember(url);
    return replace(state, title, url);
  };
  addEventListener("popstate", () => {
    views = [{ url: location.href, at: 0 }];
  });
}

export default function () {
  install();
}
