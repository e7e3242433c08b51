// What the upload page keeps on the phone, in IndexedDB (database "sirekap-unggah"), so that no
// photo is lost to a failed upload, a reload or a closed tab:
// - pages: {id, owner, doc ("" while not yet sent), position, name, type, blob, size, sha256,
//   original: {sha256, takenAt, location}, uploadUrl (its tus upload, once created), sent (bytes
//   the server confirmed), done (all of them)};
// - blobs: {id (the page's), owner, blob}: the bytes to send, apart, so that a page's record is
//   written after every chunk without copying its photo;
// - documents: {id (the tus `document`), owner, tps, contest, contestName, basedOn, reason,
//   created, state, message, status, retryAt}.
// Every record names its owner (the logged-in user): a phone shared by two officers sends each
// one's photos under their own account only.
"use strict";

window.UnggahStore = (() => {
  const NAME = "sirekap-unggah";
  const STORES = ["pages", "blobs", "documents"];
  let database = null;

  function opened() {
    if (!database) {
      database = new Promise((resolve, reject) => {
        const request = indexedDB.open(NAME, 1);
        request.onupgradeneeded = () => {
          for (const store of STORES) request.result.createObjectStore(store, { keyPath: "id" });
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      // Asks the browser not to evict what is kept here when the phone runs short of space.
      if (navigator.storage && navigator.storage.persist) navigator.storage.persist();
    }
    return database;
  }

  function finished(transaction) {
    return new Promise((resolve, reject) => {
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error || new Error("IndexedDB: aborted"));
    });
  }

  // Every record of a store that belongs to `owner`.
  async function all(store, owner) {
    const transaction = (await opened()).transaction(store, "readonly");
    const request = transaction.objectStore(store).getAll();
    await finished(transaction);
    return request.result.filter((record) => record.owner === owner);
  }

  // One transaction: `put` and `remove` are {pages: [...], blobs: [...], documents: [...]} of
  // records to write and of ids to delete. Either all of it is kept or none.
  async function write({ put = {}, remove = {} }) {
    const transaction = (await opened()).transaction(STORES, "readwrite");
    for (const store of STORES) {
      for (const record of put[store] || []) transaction.objectStore(store).put(record);
      for (const id of remove[store] || []) transaction.objectStore(store).delete(id);
    }
    await finished(transaction);
  }

  // The blobs of the owner's pages, by page id.
  async function blobs(owner) {
    return new Map((await all("blobs", owner)).map((record) => [record.id, record.blob]));
  }

  return {
    pages: (owner) => all("pages", owner),
    blobs,
    documents: (owner) => all("documents", owner),
    write,
  };
})();
