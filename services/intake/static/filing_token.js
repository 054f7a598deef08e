// The filing token of someone who proved the contact on file with a one-time code (the
// locked-out path): written by the locked-out page, used and forgotten by the complaint page.
// It lives in sessionStorage only (this tab, gone when it closes), never in localStorage or a
// URL, where it would outlive the visit or leak into history and logs.
"use strict";

window.FilingToken = (function () {
  const KEY = "intake.filingToken";
  // Treat the token as gone a little before the API does, so a filing never races its expiry.
  const MARGIN_MS = 30 * 1000;

  function save(token, expiresInS, reference) {
    const entry = { token: token, expiresAt: Date.now() + expiresInS * 1000, reference: reference };
    sessionStorage.setItem(KEY, JSON.stringify(entry));
  }

  // {token, expiresAt, reference: {kind: "seller_id" | "order_id", value}, expired} or null.
  function read() {
    let entry = null;
    try { entry = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (e) { entry = null; }
    if (!entry || !entry.token || !entry.reference) return null;
    entry.expired = Date.now() > entry.expiresAt - MARGIN_MS;
    return entry;
  }

  function forget() { sessionStorage.removeItem(KEY); }

  // "seller account sel-48213" or "order 114-7710042-5501234".
  function describe(reference) {
    return (reference.kind === "seller_id" ? "seller account " : "order ") + reference.value;
  }

  return { save: save, read: read, forget: forget, describe: describe };
})();
