// The upload page on a phone (uploads/templates/uploads/form.html; docs/uploads.md says what it
// does for the person holding the phone). Without this script, or in a browser without
// IndexedDB, the page is the plain multipart form.
//
// Each page photographed or picked is made ready (unggah-photo.js) and kept in IndexedDB
// (unggah-store.js) before anything goes over the network. "Upload" turns the pages into a
// document, which is sent page by page over tus (tus-js-client, 256 KiB chunks, its upload URL
// kept with the page so that a reload resumes it), then the state endpoint says whether the
// server took it in or refused it; taken in, its photos leave the phone. Offline, it waits for
// the network (the `online` event, a timer, the next time the page opens). A session that ended
// stops the sending and asks for a new login; nothing is lost meanwhile.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  const ready =
    form && window.tus && window.tus.isSupported && window.indexedDB && window.crypto &&
    window.crypto.subtle && window.UnggahStore && window.UnggahPhoto;
  if (!ready) return;

  const Store = window.UnggahStore;
  const Photo = window.UnggahPhoto;
  const words = JSON.parse(document.getElementById("phone-words").textContent);
  const owner = form.dataset.user;
  // A phone on a bad network loses at most one chunk when its connection breaks (nginx passes
  // a chunk on only once it is whole, docs/uploads.md).
  const CHUNK_BYTES = 256 * 1024;
  // tus-js-client's own retries of one request, then ours: a document waiting for the network
  // is tried again this often, besides when the browser says the network is back.
  const RETRY_DELAYS = [0, 1000, 3000, 6000];
  const WAIT_MS = 20000;
  // The state of a document the server has, until it is published, while the page is seen.
  const POLL_MS = 15000;
  // A request that moved no byte for this long is given up and started again: a phone that
  // lost its signal may keep a dead connection open for minutes.
  const STALL_MS = 45000;
  const SENDABLE = ["waiting", "sending", "checking"];

  const ui = {
    fileField: form.querySelector("input[name=file]"),
    pagesBox: form.querySelector(".phone-pages"),
    pageList: form.querySelector(".phone-page-list"),
    problem: form.querySelector(".phone-problem"),
    camera: form.querySelector(".phone-camera"),
    files: form.querySelector(".phone-files"),
    documentsBox: document.querySelector(".phone-documents"),
    documentList: document.querySelector(".phone-document-list"),
    news: document.getElementById("phone-news"),
    login: document.querySelector(".phone-login"),
  };

  let pages = [];
  let documents = [];
  const blobs = new Map(); // page id -> Blob, while the phone keeps it
  const thumbnails = new Map(); // page id -> blob: URL
  const sentNow = new Map(); // page id -> bytes sent so far by the running request
  let sendingId = null;
  // The network came back while a document was being sent: that attempt may still fail for
  // the network that was gone, and then the documents go again at once, not WAIT_MS later.
  let wokenWhileSending = false;
  let current = null; // the running page's upload: {upload, stop(error), lastMoved}
  let loginNeeded = false;
  let wakeTimer = null;
  let pollTimer = null;

  // --- Small helpers

  const fill = (text, values) =>
    text.replace(/\{(\w+)\}/g, (found, key) => (key in values ? String(values[key]) : found));

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(text, label, action) {
    const node = element("button", "small", text);
    node.type = "button";
    if (label) node.setAttribute("aria-label", label);
    node.addEventListener("click", action);
    return node;
  }

  const announce = (text) => {
    ui.news.textContent = text;
  };

  function problem(text) {
    ui.problem.textContent = text;
    ui.problem.hidden = !text;
  }

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
    // The cookie, not the page's token: a page kept for offline use may be older than a login.
    return cookie ? cookie.slice("csrftoken=".length) : form.elements.csrfmiddlewaretoken.value;
  }

  const draftPages = () =>
    pages.filter((page) => !page.doc).sort((a, b) => a.position - b.position);
  const pagesOf = (doc) =>
    pages.filter((page) => page.doc === doc.id).sort((a, b) => a.position - b.position);

  // Each writes a record the page still has: a document removed while it was being sent is
  // not brought back by what its sending says last.
  async function savePage(page) {
    if (pages.includes(page)) await Store.write({ put: { pages: [page] } });
  }

  async function saveDocument(doc, changes) {
    Object.assign(doc, changes);
    if (!documents.includes(doc)) return;
    await Store.write({ put: { documents: [doc] } });
    renderDocument(doc);
  }

  // --- Pages taken or picked: made ready, kept, listed

  async function add(files) {
    problem("");
    for (const file of files) {
      const draft = draftPages();
      if (draft.length >= words.limits.pages) {
        problem(fill(words.too_many, { limit: words.limits.pages }));
        return;
      }
      announce(words.preparing);
      let ready;
      try {
        ready = await Photo.prepare(file);
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        problem(fill(words.not_readable, { name: file.name }));
        continue;
      }
      if (ready.blob.size > words.limits.page_bytes) {
        const megabytes = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
        const sizes = { size: megabytes(ready.blob.size), limit: megabytes(words.limits.page_bytes) };
        problem(fill(words.too_large, { name: file.name, ...sizes }));
        continue;
      }
      const page = {
        id: crypto.randomUUID(),
        owner,
        doc: "",
        position: draft.length ? draft[draft.length - 1].position + 1 : 1,
        name: ready.name,
        type: ready.type,
        size: ready.blob.size,
        sha256: ready.sha256,
        width: ready.width || 0,
        height: ready.height || 0,
        original: ready.original,
        uploadUrl: "",
        sent: 0,
        done: false,
      };
      try {
        await Store.write({ put: { pages: [page], blobs: [{ id: page.id, owner, blob: ready.blob }] } });
      } catch (error) {
        problem(fill(words.not_kept, { name: file.name, error: error.message || error.name }));
        continue;
      }
      pages.push(page);
      blobs.set(page.id, ready.blob);
      renderDraft();
      announce(fill(words.added, { n: draftPages().length }));
    }
  }

  async function move(page, step) {
    const draft = draftPages();
    const index = draft.indexOf(page);
    const other = draft[index + step];
    if (!other) return;
    [page.position, other.position] = [other.position, page.position];
    await Store.write({ put: { pages: [page, other] } });
    renderDraft();
    const moved = ui.pageList.querySelector(`[data-page="${page.id}"] [data-step="${step}"]`);
    (moved && !moved.disabled ? moved : ui.pageList.querySelector(`[data-page="${page.id}"] button`)).focus();
  }

  async function removePage(page, number) {
    if (!window.confirm(fill(words.remove_page_confirm, { n: number }))) return;
    await Store.write({ remove: { pages: [page.id], blobs: [page.id] } });
    forget([page]);
    renderDraft();
    ui.camera.focus();
  }

  function forget(gone) {
    const ids = new Set(gone.map((page) => page.id));
    pages = pages.filter((page) => !ids.has(page.id));
    for (const id of ids) {
      blobs.delete(id);
      if (thumbnails.has(id)) URL.revokeObjectURL(thumbnails.get(id));
      thumbnails.delete(id);
    }
  }

  // --- What a page and a document show

  function thumbnail(page) {
    const blob = blobs.get(page.id);
    if (!blob || !page.type.startsWith("image/")) return null;
    if (!thumbnails.has(page.id)) thumbnails.set(page.id, URL.createObjectURL(blob));
    const image = element("img", "phone-thumb");
    image.src = thumbnails.get(page.id);
    image.alt = "";
    return image;
  }

  function pageState(page, doc) {
    if (doc && doc.state === "published") return words.published;
    if (page.done || (doc && doc.state === "received")) return words.on_server;
    if (sentNow.has(page.id)) {
      return fill(words.sending, { percent: Math.floor((100 * sentNow.get(page.id)) / page.size) });
    }
    if (page.sent) return fill(words.sending, { percent: Math.floor((100 * page.sent) / page.size) });
    return words.on_phone;
  }

  function pageItem(page, number, doc) {
    const item = element("li", "phone-page");
    item.dataset.page = page.id;
    const image = thumbnail(page);
    if (image) item.append(image);
    const text = element("div", "phone-page-text");
    const title = element("span", "phone-page-title", fill(words.page_n, { n: number }));
    title.id = `title-${page.id}`;
    const kind = page.type === "application/pdf" ? "PDF" : `${page.width}×${page.height}`;
    const size = `${Math.max(1, Math.round(page.size / 1024))} KB`;
    const about = element("span", "phone-page-about", ` · ${kind} · ${size}`);
    const state = element("span", "phone-page-state", pageState(page, doc));
    const bar = element("progress");
    bar.max = page.size;
    bar.setAttribute("aria-labelledby", title.id);
    text.append(title, about, element("br"), state, bar);
    item.append(text);
    showProgress(page, doc, item);
    return item;
  }

  function showProgress(page, doc, item) {
    const node = item || document.querySelector(`[data-page="${page.id}"]`);
    if (!node) return;
    const done = page.done || (doc && ["received", "published"].includes(doc.state));
    const sent = done ? page.size : sentNow.has(page.id) ? sentNow.get(page.id) : page.sent;
    const bar = node.querySelector("progress");
    bar.value = sent;
    const state = pageState(page, doc);
    bar.setAttribute("aria-valuetext", state);
    node.querySelector(".phone-page-state").textContent = state;
  }

  function renderDraft() {
    const draft = draftPages();
    const items = draft.map((page, index) => {
      const item = pageItem(page, index + 1, null);
      const tools = element("div", "phone-page-tools");
      const number = index + 1;
      const up = button("↑", fill(words.move_up, { n: number }), () => move(page, -1));
      const down = button("↓", fill(words.move_down, { n: number }), () => move(page, 1));
      up.dataset.step = "-1";
      down.dataset.step = "1";
      up.disabled = index === 0;
      down.disabled = index === draft.length - 1;
      const remove = button("✕", fill(words.remove, { n: number }), () => removePage(page, number));
      tools.append(up, down, remove);
      item.append(tools);
      return item;
    });
    ui.pageList.replaceChildren(...items);
  }

  function documentText(doc) {
    if (loginNeeded && SENDABLE.includes(doc.state)) return words.login_again;
    if (doc.message) return doc.message;
    const status = words.statuses[doc.status] || doc.status || "";
    return {
      waiting: words.document_waiting,
      sending: words.document_sending,
      checking: words.document_checking,
      received: fill(words.document_received, { status }),
      published: words.document_published,
    }[doc.state] || "";
  }

  function documentItem(doc) {
    const item = element("li", `phone-document phone-document-${doc.state}`);
    item.dataset.document = doc.id;
    const title = fill(words.document_for, { tps: doc.tps, contest: doc.contestName || doc.contest });
    item.append(element("h3", "", title), element("p", "phone-document-state", documentText(doc)));
    const list = element("ol", "phone-page-list");
    list.append(...pagesOf(doc).map((page, index) => pageItem(page, index + 1, doc)));
    item.append(list);
    const tools = element("div", "phone-document-tools");
    if (form.dataset.follow && ["received", "published"].includes(doc.state)) {
      // Staff and PPK operators go on to the TPS's own page (its history, its documents).
      const follow = element("a", "phone-follow", words.follow);
      follow.href = placed(form.dataset.follow, doc);
      tools.append(follow);
    }
    if (doc.state === "refused") tools.append(button(words.back_to_pages, "", () => reopen(doc)));
    tools.append(button(words.remove_document, "", () => removeDocument(doc)));
    item.append(tools);
    return item;
  }

  function renderDocument(doc) {
    const old = ui.documentList.querySelector(`[data-document="${doc.id}"]`);
    if (old) old.replaceWith(documentItem(doc));
    else renderDocuments();
  }

  function renderDocuments() {
    const newest = [...documents].sort((a, b) => b.created - a.created);
    ui.documentList.replaceChildren(...newest.map(documentItem));
    ui.documentsBox.hidden = !documents.length;
  }

  // --- A document: made from the draft, sent, taken back, removed

  async function queue() {
    problem("");
    const draft = draftPages();
    const tps = form.elements.tps.value.trim().split(" ")[0].replaceAll(".", "");
    const contest = form.elements.contest.value;
    if (!tps || !contest) return problem(words.no_target);
    if (!draft.length) return problem(words.no_pages);
    const option = form.elements.contest.selectedOptions[0];
    const doc = {
      id: crypto.randomUUID(),
      owner,
      tps,
      contest,
      contestName: option ? option.textContent.trim() : contest,
      basedOn: form.elements.based_on ? form.elements.based_on.value : "",
      reason: form.elements.reason ? form.elements.reason.value.trim() : "",
      created: Date.now(),
      state: "waiting",
      message: "",
      status: "",
      retryAt: 0,
    };
    draft.forEach((page, index) => {
      page.doc = doc.id;
      page.position = index + 1;
    });
    await Store.write({ put: { documents: [doc], pages: draft } });
    documents.push(doc);
    if (form.elements.reason) form.elements.reason.value = "";
    renderDraft();
    renderDocuments();
    announce(fill(words.queued, { tps }));
    kick();
  }

  async function reopen(doc) {
    const draft = draftPages();
    let position = draft.length ? draft[draft.length - 1].position : 0;
    const moved = pagesOf(doc).map((page) =>
      Object.assign(page, { doc: "", position: (position += 1), uploadUrl: "", sent: 0, done: false }),
    );
    await Store.write({ put: { pages: moved }, remove: { documents: [doc.id] } });
    documents = documents.filter((other) => other !== doc);
    form.elements.tps.value = doc.tps;
    form.elements.contest.value = doc.contest;
    renderDraft();
    renderDocuments();
    form.elements.tps.focus();
  }

  async function removeDocument(doc) {
    if (!window.confirm(words.remove_document_confirm)) return;
    if (sendingId === doc.id && current) current.stop(new Offline("removed"));
    const gone = pagesOf(doc);
    const ids = gone.map((page) => page.id);
    await Store.write({ remove: { documents: [doc.id], pages: ids, blobs: ids } });
    documents = documents.filter((other) => other !== doc);
    forget(gone);
    renderDocuments();
  }

  // --- Sending

  class Offline extends Error {}
  class LoginNeeded extends Error {}

  // A URL of the server's with the document's contest and TPS in place of KIND and CODE.
  function placed(url, doc) {
    return url.replace("KIND", encodeURIComponent(doc.contest)).replace("CODE", encodeURIComponent(doc.tps));
  }

  // What the server has for the document's TPS and contest, or null when it will not say (a
  // TPS outside the user's region, an unknown one: sending it brings the refusal in words).
  // A background check (poll) says so: it does not keep an unattended session alive.
  async function serverState(doc, { background = false } = {}) {
    const headers = { Accept: "application/json", ...(background ? { "X-Poll": "1" } : {}) };
    let response;
    try {
      response = await fetch(placed(form.dataset.state, doc), { cache: "no-store", headers });
    } catch (error) {
      throw new Offline(error.message);
    }
    if (response.status === 401) throw new LoginNeeded();
    if (response.status >= 500) throw new Offline(`${response.status}`);
    return response.ok ? response.json() : null;
  }

  const sameBytes = (state, doc) => {
    const mine = pagesOf(doc);
    return (
      state.pages.length === mine.length &&
      state.pages.every((page, index) => page.sha256 === mine[index].sha256)
    );
  };

  // Whether the state settles the document: taken in (the server's current document is these
  // pages), or refused (the refusal names it, once every page was sent).
  async function settled(doc, state) {
    if (!state) return false;
    const mine = pagesOf(doc);
    if (state.refusal && state.refusal.document_id === doc.id && mine.every((page) => page.done)) {
      await refuse(doc, state.refusal.pesan || state.refusal.error);
      return true;
    }
    if (state.document_id === doc.id || (state.sha256 && sameBytes(state, doc))) {
      await receive(doc, state);
      return true;
    }
    return false;
  }

  async function receive(doc, state) {
    const mine = pagesOf(doc);
    for (const page of mine) Object.assign(page, { done: true, sent: page.size });
    await Store.write({ put: { pages: mine }, remove: { blobs: mine.map((page) => page.id) } });
    for (const page of mine) {
      blobs.delete(page.id);
      if (thumbnails.has(page.id)) URL.revokeObjectURL(thumbnails.get(page.id));
      thumbnails.delete(page.id);
    }
    const published = state.status === "published";
    await saveDocument(doc, { state: published ? "published" : "received", status: state.status, message: "" });
    announce(`${fill(words.document_for, { tps: doc.tps, contest: doc.contestName })}: ${documentText(doc)}`);
  }

  async function refuse(doc, pesan) {
    await saveDocument(doc, { state: "refused", message: fill(words.document_refused, { pesan }) });
    announce(documentText(doc));
  }

  function metadataOf(doc, page, count) {
    const metadata = {
      tps: doc.tps,
      contest: doc.contest,
      document: doc.id,
      page: String(page.position),
      pages: String(count),
      filename: page.name,
    };
    const optional = {
      original_sha256: page.original.sha256,
      taken_at: page.original.takenAt,
      location: page.original.location,
      based_on: doc.basedOn,
      reason: doc.reason,
    };
    for (const [key, value] of Object.entries(optional)) if (value) metadata[key] = value;
    return metadata;
  }

  function bodyOf(response) {
    try {
      return JSON.parse(response.getBody() || "{}") || {};
    } catch {
      return {};
    }
  }

  // Retries within tus-js-client: a broken request while online, a server error, the
  // protocol's own 409 (an offset that moved, another request writing) and 423; never a
  // refusal of the document (its body names it) nor any other 4xx.
  function shouldRetry(error) {
    if (!navigator.onLine) return false;
    const response = error.originalResponse;
    const status = response ? response.getStatus() : 0;
    if (status === 0 || status >= 500 || status === 423) return true;
    return status === 409 && !bodyOf(response).document_id;
  }

  function sendPage(doc, page, count) {
    return new Promise((resolve, reject) => {
      // Stopped by us (offline, stalled, removed): tus-js-client says nothing after abort().
      const stop = (error) => {
        upload.abort();
        sentNow.delete(page.id);
        showProgress(page, doc);
        reject(error);
      };
      const upload = new window.tus.Upload(blobs.get(page.id), {
        endpoint: form.dataset.tus,
        uploadUrl: page.uploadUrl || null,
        chunkSize: CHUNK_BYTES,
        retryDelays: RETRY_DELAYS,
        storeFingerprintForResuming: false,
        metadata: metadataOf(doc, page, count),
        onBeforeRequest: (request) => request.setHeader("X-CSRFToken", csrfToken()),
        onUploadUrlAvailable: () => {
          if (upload.url !== page.uploadUrl) {
            page.uploadUrl = upload.url;
            savePage(page);
          }
        },
        onProgress: (sent) => {
          current.lastMoved = Date.now();
          sentNow.set(page.id, sent);
          showProgress(page, doc);
        },
        onChunkComplete: (chunk, accepted) => {
          page.sent = accepted;
          savePage(page);
        },
        onShouldRetry: shouldRetry,
        onSuccess: () => {
          sentNow.delete(page.id);
          Object.assign(page, { done: true, sent: page.size });
          savePage(page).then(resolve, reject);
          showProgress(page, doc);
        },
        onError: (error) => {
          sentNow.delete(page.id);
          showProgress(page, doc);
          reject(error);
        },
      });
      current = { upload, stop, lastMoved: Date.now() };
      upload.start();
    });
  }

  async function send(doc) {
    await saveDocument(doc, { state: "sending", message: "" });
    try {
      if (await settled(doc, await serverState(doc))) return;
      const mine = pagesOf(doc);
      for (const page of mine) {
        if (!page.done) await sendPage(doc, page, mine.length);
      }
      await saveDocument(doc, { state: "checking" });
      if (!(await settled(doc, await serverState(doc)))) {
        await later(doc, WAIT_MS, words.document_server_error);
      }
    } catch (error) {
      await failed(doc, error);
    } finally {
      current = null;
    }
  }

  function later(doc, delay, message) {
    return saveDocument(doc, { state: "waiting", retryAt: Date.now() + delay, message: message || "" });
  }

  async function failed(doc, error) {
    if (error instanceof LoginNeeded) return needLogin();
    if (error instanceof Offline) return later(doc, WAIT_MS);
    const response = error.originalResponse;
    const status = response ? response.getStatus() : 0;
    if (!status) return later(doc, WAIT_MS); // no answer: the network
    const body = bodyOf(response);
    if (status === 401 || (status === 403 && /^CSRF/.test(body.error || ""))) return needLogin();
    if (status === 429) {
      const seconds = Number.parseInt(response.getHeader("Retry-After"), 10) || 60;
      return later(doc, seconds * 1000, fill(words.document_retry_after, { seconds }));
    }
    if (status === 404 || status === 410) {
      // The page's upload expired on the server: its page starts again from its first byte.
      for (const page of pagesOf(doc).filter((page) => !page.done)) {
        Object.assign(page, { uploadUrl: "", sent: 0 });
        await savePage(page);
      }
      return later(doc, 0);
    }
    if (status >= 500 || status === 409 || status === 423) {
      return later(doc, WAIT_MS, words.document_server_error);
    }
    return refuse(doc, body.pesan || body.error || `HTTP ${status}`);
  }

  function needLogin() {
    loginNeeded = true;
    ui.login.querySelector(".phone-login-text").textContent = words.login_again;
    ui.login.hidden = false;
    renderDocuments();
    announce(words.login_again);
  }

  // Sends the documents waiting, oldest first, one at a time (and in one tab of the phone at a
  // time, where the browser can say so), then sleeps until the next is due.
  async function kick() {
    if (sendingId || loginNeeded) return;
    const due = documents
      .filter((doc) => SENDABLE.includes(doc.state) && (doc.retryAt || 0) <= Date.now())
      .sort((a, b) => a.created - b.created)[0];
    if (due) {
      sendingId = due.id;
      try {
        if (navigator.locks) {
          await navigator.locks.request(`unggah-${owner}`, { ifAvailable: true }, (lock) =>
            // Another tab of this phone is sending: it goes on, this one looks again later.
            lock ? send(due) : later(due, WAIT_MS, words.document_sending),
          );
        } else {
          await send(due);
        }
      } finally {
        sendingId = null;
      }
      if (wokenWhileSending) return wake();
      return kick();
    }
    sleepUntilDue();
    schedulePoll();
  }

  function sleepUntilDue() {
    clearTimeout(wakeTimer);
    const waiting = documents.filter((doc) => SENDABLE.includes(doc.state));
    if (!waiting.length || loginNeeded) return;
    const next = Math.min(...waiting.map((doc) => doc.retryAt || 0));
    wakeTimer = setTimeout(kick, Math.max(0, next - Date.now()));
  }

  function wake() {
    wokenWhileSending = Boolean(sendingId);
    if (wokenWhileSending) return;
    for (const doc of documents) if (SENDABLE.includes(doc.state)) doc.retryAt = 0;
    return kick();
  }

  // --- Following what the server has until it is published

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (documents.some((doc) => doc.state === "received")) pollTimer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    if (document.hidden || loginNeeded) return;
    for (const doc of documents.filter((doc) => doc.state === "received")) {
      try {
        const state = await serverState(doc, { background: true });
        if (state && (state.status !== doc.status)) {
          const published = state.status === "published" && sameBytes(state, doc);
          await saveDocument(doc, { state: published ? "published" : "received", status: state.status });
          if (published) announce(`${fill(words.document_for, { tps: doc.tps, contest: doc.contestName })}: ${words.document_published}`);
        }
      } catch (error) {
        if (error instanceof LoginNeeded) return needLogin();
        if (!(error instanceof Offline)) throw error;
      }
    }
    schedulePoll();
  }

  // --- The page

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.register(form.dataset.worker).catch(() => {
      // The page works without it, online.
    });
  }

  // What the phone kept from before: read once, before anything is added or sent.
  async function load() {
    [pages, documents] = await Promise.all([Store.pages(owner), Store.documents(owner)]);
    for (const [id, blob] of await Store.blobs(owner)) blobs.set(id, blob);
    for (const doc of documents) {
      // A tab closed while it sent: what it was doing starts again (tus resumes the page).
      if (SENDABLE.includes(doc.state)) Object.assign(doc, { state: "waiting", retryAt: 0 });
    }
    renderDraft();
    renderDocuments();
  }

  function start() {
    const wrapper = ui.fileField && ui.fileField.closest("div");
    if (ui.fileField) ui.fileField.disabled = true; // the pages go over tus, not in the form
    if (wrapper) wrapper.hidden = true;
    ui.pagesBox.hidden = false;
    // Listening at once: a photo taken while the phone's store is still being read waits, and
    // "Unggah" tapped while a photo is still being shrunk waits for it, in the order they came.
    const loaded = load();
    let work = loaded;
    const inTurn = (step) => {
      const done = work.then(step);
      work = done.catch(() => {}); // one failed step (reported by its promise) does not stop the rest
      return done;
    };
    const take = (input) => {
      const picked = [...input.files];
      input.value = "";
      if (picked.length) inTurn(() => add(picked));
    };
    for (const input of [ui.camera, ui.files]) {
      input.addEventListener("change", () => take(input));
      // On a slow phone a photo can be picked before this script ran: it is taken now.
      take(input);
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      inTurn(queue);
    });
    window.addEventListener("online", () => loaded.then(wake));
    window.addEventListener("offline", () => {
      if (current) current.stop(new Offline("offline"));
    });
    setInterval(() => {
      if (current && Date.now() - current.lastMoved > STALL_MS) {
        current.stop(new Offline("stalled"));
      }
    }, STALL_MS / 3);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) {
        loaded.then(() => {
          poll();
          wake();
        });
      }
    });
    registerWorker();
    loaded.then(() => {
      kick();
      poll();
    });
  }

  start();
})();
