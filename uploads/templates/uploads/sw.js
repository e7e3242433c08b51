// The upload page's service worker (uploads.views.upload_service_worker): the page opens without
// a network. Its scope is the page's folder (/unggah/ or /en/unggah/). It answers two kinds of
// request and lets every other one (the tus uploads, the state of an upload) go to the network
// untouched:
// - the page itself: from the network whenever it answers, a copy kept of each good answer; from
//   that copy when the network fails. The copy may be old (the form as it was, a session since
//   ended): the page's script learns from the server what holds once the network is back.
// - the page's files (hashed names, never changed): kept when the worker installs, from the
//   copy ever after.
// The photos themselves are not here: the page keeps them in IndexedDB.
"use strict";

const ASSETS = {{ assets|safe }};
const VERSION = {{ version|safe }};
const FILES = `unggah-files-${VERSION}`;
const PAGE_CACHE = "unggah-page";

// The page's path: the worker's scope.
const PAGE = new URL(self.registration.scope).pathname;

self.addEventListener("install", (event) => {
  event.waitUntil(
    Promise.all([
      caches.open(FILES).then((cache) => cache.addAll(ASSETS)),
      // The page that registered the worker was not fetched through it: a first copy now.
      pageFromNetwork(new Request(PAGE, { credentials: "same-origin" })).catch(() => null),
    ]).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  const old = (name) => name.startsWith("unggah-files-") && name !== FILES;
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter(old).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") {
    return;
  }
  const url = new URL(request.url);
  if (request.mode === "navigate" && url.pathname === PAGE) {
    event.respondWith(pageFromNetwork(request));
  } else if (url.origin === self.location.origin && ASSETS.includes(url.pathname)) {
    event.respondWith(caches.match(request).then((kept) => kept || fetch(request)));
  }
});

async function pageFromNetwork(request) {
  const cache = await caches.open(PAGE_CACHE);
  try {
    const response = await fetch(request);
    // Only the page itself: not the login page a session that ended is sent to, nor an error.
    if (response.ok && !response.redirected) {
      await cache.put(PAGE, response.clone());
    }
    return response;
  } catch (error) {
    const kept = await cache.match(PAGE);
    if (kept) {
      return kept;
    }
    throw error;
  }
}
