// What the agent desktop and the partner view share: the signed-in token (sessionStorage, this
// tab only), calls to each service's API, drafts that survive a new sign-in, and refusals shown
// where they belong (a 422 next to its field, a 409 as a conflict with the fresh state).
"use strict";

window.Desk = (function () {
  const body = document.body;
  const audience = body.dataset.audience;            // "desk" or "partner"
  const routingUrl = body.dataset.routingUrl;
  const TOKEN = audience + ".token", NEXT = audience + ".next";

  function token() { return sessionStorage.getItem(TOKEN); }

  // The token's claims, for showing who is signed in and whose queue to ask for. The services
  // verify the signature on every call; this only reads it.
  function claims() {
    const t = token();
    if (!t) return null;
    try {
      const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part.padEnd(part.length + (4 - part.length % 4) % 4, "=")));
    } catch (e) { return null; }
  }

  function signIn(newToken) { sessionStorage.setItem(TOKEN, newToken); }

  // To sign-in, remembering where to come back to; drafts stay in sessionStorage meanwhile.
  function toSignIn(expired) {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.setItem(NEXT, location.pathname + location.search);
    location.assign(`/${audience}/sign-in${expired ? "?expired=1" : ""}`);
  }

  function afterSignIn() {
    const next = sessionStorage.getItem(NEXT);
    sessionStorage.removeItem(NEXT);
    location.assign(next && next.startsWith(`/${audience}/`) ? next : `/${audience}/`);
  }

  function requireSignIn() {
    const who = claims();
    if (!who) { toSignIn(false); return null; }
    document.getElementById("who").textContent = `${who.sub} (${who.role}${who.team ? ", " + who.team : ""})`;
    const metrics = document.getElementById("metrics-link");  // the figures are the supervisors'
    if (metrics && who.role === "supervisor") metrics.hidden = false;
    const out = document.getElementById("sign-out");
    out.hidden = false;
    out.addEventListener("click", () => { sessionStorage.removeItem(TOKEN); location.assign(`/${audience}/sign-in`); });
    return who;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // One call to a service. A 401 (the session expired) goes to sign-in and never resolves: the
  // caller's form is already kept as a draft and comes back after signing in.
  async function call(base, path, options) {
    const opts = options || {};
    const headers = { Authorization: "Bearer " + token() };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.key) headers["Idempotency-Key"] = opts.key;
    const response = await fetch(base + path, {
      method: opts.method || "GET", headers: headers, cache: "no-store",
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    if (response.status === 401) { toSignIn(true); return new Promise(() => {}); }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, ok: response.ok, data: data };
  }

  const routing = (path, options) => call(routingUrl, path, options);
  const intake = (path, options) => call("", path, options);

  function messageOf(data) {
    return (data && (data.message || (data.detail && data.detail.message))) || "";
  }

  // --- forms: drafts, field errors, outcomes ------------------------------------------------------

  function draftKey(form) { return `draft:${location.pathname}:${form.id || form.dataset.draft}`; }

  function keepDraft(form) {
    const restore = sessionStorage.getItem(draftKey(form));
    if (restore) {
      const values = JSON.parse(restore);
      Object.entries(values).forEach(([name, value]) => { if (form.elements[name]) form.elements[name].value = value; });
      say(form, "Your unsent draft is back.", "progress");
    }
    form.addEventListener("input", () => {
      const values = {};
      Array.from(form.elements).forEach((el) => { if (el.name) values[el.name] = el.value; });
      sessionStorage.setItem(draftKey(form), JSON.stringify(values));
    });
  }

  function dropDraft(form) { sessionStorage.removeItem(draftKey(form)); }

  function say(form, text, kind) {
    const box = form.querySelector(".form-message");
    box.textContent = text;
    box.className = "form-message " + (kind || "");
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach((p) => { p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    say(form, "");
  }

  // The fields a 422 names: every broken rule (problem details' errors[]), the one field, or the
  // message's first word.
  function namedFields(data) {
    if (data && Array.isArray(data.errors)) return data.errors.map((e) => [e.field, e.rule]);
    if (data && data.field) return [[data.field, data.message]];
    const m = /^([a-z_][\w.]*)[\s:]/.exec(messageOf(data));
    return m ? [[m[1], messageOf(data)]] : [];
  }

  // The error slot for a dotted path, or for its nearest parent ("items.0.quantity" → "items").
  function slotFor(form, path) {
    for (let p = path; p; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(p)}"]`);
      if (slot) return [slot, form.elements[p]];
    }
    return [null, null];
  }

  function showInvalid(form, data) {
    let placed = false;
    namedFields(data).forEach(([path, text]) => {
      const [slot, input] = slotFor(form, path);
      if (!slot) return;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + text;
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      placed = true;
    });
    say(form, placed ? "Please check the fields marked." : messageOf(data) || "Please check the form.", "error");
  }

  // Send a form's body; show what came back. ``fresh`` loads the current state after a conflict.
  async function submit(form, send, fresh) {
    clearErrors(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.dataset.key = form.dataset.key || newKey();
    try {
      const result = await send(form.dataset.key);
      if (result.ok) {
        dropDraft(form);
        delete form.dataset.key;
        say(form, "Done.", "ok");
      } else {
        delete form.dataset.key;  // a refusal: the next attempt is a new request
        if (result.status === 422) showInvalid(form, result.data);
        else if (result.status === 409) {
          const state = result.data && result.data.current_state;
          say(form, `Someone else acted first: ${messageOf(result.data)}` +
              (state ? ` The case is now ${state}; your entry is kept, nothing was overwritten.` : ""), "error conflict");
          if (fresh) await fresh(result.data);
        } else say(form, messageOf(result.data) || `Refused (${result.status}).`, "error");
      }
      return result;
    } catch (e) {
      say(form, "We could not reach the service. Please try again.", "error");
      return null;
    } finally {
      button.disabled = false;
    }
  }

  function lines(text) { return (text || "").split("\n").map((s) => s.trim()).filter(Boolean); }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  // "in 3 h 59 min" / "5 min ago": how long until (or since) a due time.
  function relative(iso) {
    const minutes = Math.round((new Date(iso) - Date.now()) / 60000);
    const span = Math.abs(minutes) >= 60 ? `${Math.floor(Math.abs(minutes) / 60)} h ${Math.abs(minutes) % 60} min`
      : `${Math.abs(minutes)} min`;
    return minutes >= 0 ? `in ${span}` : `${span} ago`;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // Rewritten only when a value changed: a refresh must not move the keyboard focus or re-read.
  function facts(dl, pairs) {
    const signature = JSON.stringify(pairs);
    if (dl.dataset.signature === signature) return;
    dl.dataset.signature = signature;
    dl.replaceChildren(...pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => {
      const div = el("div");
      div.append(el("dt", k), el("dd", v));
      return div;
    }));
  }

  // Read out one change, once (a polite live region the page holds: #announce).
  function announce(text) {
    const box = document.getElementById("announce");
    if (box && text) box.textContent = text;
  }

  // "Sam Okafor" / "sam@example.com" / "+44…": who complained, as staff may read it.
  function person(complainant) {
    const c = complainant || {};
    return c.display_name || c.email || c.phone || c.social_handle ||
      (c.seller_id && `seller ${c.seller_id}`) || (c.customer_id && `customer ${c.customer_id}`) || "Someone";
  }

  // "4 min" / "2 h 5 min" / "3 days": how long ago, for a queue's age column.
  function age(iso) {
    const minutes = Math.max(0, Math.round((Date.now() - new Date(iso)) / 60000));
    if (minutes >= 2 * 24 * 60) return `${Math.floor(minutes / 1440)} days`;
    return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
  }

  function notice(text) {
    const box = document.getElementById("page-message");
    if (box.textContent === (text || "")) return;  // the same alert again would be read again
    box.textContent = text || "";
    box.className = "form-message" + (text ? " error" : "");
  }

  return { audience, claims, signIn, afterSignIn, requireSignIn, toSignIn, call, routing, intake, keepDraft,
           dropDraft, submit, say, lines, when, relative, el, facts, notice, messageOf, newKey, announce, person, age };
})();
