// The complaint page: files the complaint through the public API and, for "Call me now",
// asks for the callback too, then opens the case's status page. Someone who verified by a
// one-time code (the locked-out page) files with that filing token. No business rules here:
// what the API refuses is shown as it says it.
"use strict";

(function () {
  const E164 = /^\+[1-9]\d{6,14}$/;
  const EITHER = "Enter an email address or a phone number, so that we can answer you (one is enough).";
  // What to say next to a field the API refused (its own message, naming the rule, goes below).
  const PLAIN = {
    category: "Choose what your complaint is about.",
    description: "Tell us what happened, in at most 5000 characters.",
    email: "Enter an email address like name@example.com.",
    phone: "Enter the phone number with its country code, starting with +, for example +44 7700 900123.",
    order_id: "Enter the order number as it is on your order confirmation, for example 114-5523190-0012345.",
  };
  const form = document.getElementById("complaint-form");
  const callButton = document.getElementById("call-me");
  const sendButton = document.getElementById("send");
  const message = document.getElementById("form-message");
  let filed = null;  // {complaint_id, access_token, status_url} once this page has filed
  let leaving = false;  // on the way to the status page: keep the buttons off
  const banner = document.getElementById("verified-banner");
  const lockedOutLink = document.getElementById("locked-out");
  let verified = null;  // the filing token from the locked-out page, while it is fresh
  // One key per attempt: a network retry repeats the key (the API answers it once); a refused
  // request gets a fresh one, since the customer will change what they send.
  const keys = { file: newKey(), callback: newKey() };

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function value(id) { return document.getElementById(id).value.trim(); }

  // People type numbers with spaces, dashes and brackets, or 00 for the plus.
  function normalisedPhone() {
    const raw = value("phone").replace(/[\s().-]/g, "");
    return raw.startsWith("00") ? "+" + raw.slice(2) : raw;
  }

  const summary = document.getElementById("error-summary");
  const TITLE = document.title;

  function fieldError(name, text) {
    const error = document.getElementById(name + "-error");
    const input = document.getElementById(name);
    // GOV.UK's hidden "Error:" prefix: a screen reader says what the red text is.
    if (text) error.replaceChildren(Object.assign(document.createElement("span"),
      { className: "visually-hidden", textContent: "Error: " }), text);
    else error.replaceChildren();
    if (input && input.tagName !== "FIELDSET") {
      if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }
  }

  // Where a summary link takes the person: the field itself (the first choice of a group).
  function target(name) {
    return name === "category" ? form.querySelector('input[name="category"]') : document.getElementById(name);
  }

  // GOV.UK's pattern: every problem next to its field and, once, in a summary that takes the focus
  // (so it is read out a single time), each entry a link to its field; the title says "Error".
  function showErrors(problems, general) {
    const list = document.getElementById("error-list");
    list.replaceChildren();
    problems.forEach(([name, text]) => {
      fieldError(name, text);
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `#${target(name).id}`;
      a.textContent = text;
      a.addEventListener("click", (event) => { event.preventDefault(); target(name).focus(); });
      li.append(a);
      list.append(li);
    });
    if (general) list.append(Object.assign(document.createElement("li"), { textContent: general }));
    summary.hidden = false;
    message.textContent = "";  // no "Sending…" left under a refusal
    message.className = "form-message";
    document.title = `Error: ${TITLE}`;
    summary.focus();
  }

  function clearErrors() {
    ["category", "description", "email", "phone", "order_id"].forEach((name) => fieldError(name, ""));
    summary.hidden = true;
    document.title = TITLE;
    message.textContent = "";
    message.className = "form-message";
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = "form-message " + (kind || "");
  }

  function busy(on, text) {
    callButton.disabled = sendButton.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
    if (text) say(text, "progress");
  }

  // A fresh filing token: say whose contact was proved. A stale one: forget it and say so.
  function showVerification() {
    const entry = window.FilingToken.read();
    if (entry && entry.expired) { expireVerification(); return; }
    verified = entry;
    if (verified) {
      banner.textContent = `Verified by a one-time code for ${window.FilingToken.describe(verified.reference)}` +
        " — you can file without logging in";
    }
    banner.hidden = !verified;
    lockedOutLink.hidden = Boolean(verified);
  }

  function expireVerification() {
    window.FilingToken.forget();
    verified = null;
    const again = document.createElement("a");
    again.href = "/locked-out";
    again.textContent = "verify again";
    banner.replaceChildren("Your one-time code verification has expired, so we have forgotten it. You can ",
                           again, " or send your complaint without it.");
    banner.classList.add("expired");
    banner.hidden = false;
    lockedOutLink.hidden = true;
  }

  // Still fresh now that it is about to be sent? If not, the customer decides again.
  function stillVerified() {
    if (!verified) return true;
    const entry = window.FilingToken.read();
    if (entry && !entry.expired) return true;
    expireVerification();
    banner.focus();
    return false;
  }

  function checkPhone(required) {
    const phone = normalisedPhone();
    if (!phone && required) return "Enter your phone number so that we can call you.";
    if (phone && !E164.test(phone)) {
      return PLAIN.phone;
    }
    return "";
  }

  function complaintBody(forCall) {
    const checked = form.querySelector('input[name="category"]:checked');
    const complainant = {};
    const email = value("email"), phone = normalisedPhone(), name = value("display_name");
    if (email) complainant.email = email;
    if (phone) complainant.phone = phone;
    if (name) complainant.display_name = name;
    // The filing token proves the contact on file of this account or order: name it (the API
    // fills in the verified email or phone itself).
    const ref = verified && verified.reference;
    if (ref && ref.kind === "seller_id") complainant.seller_id = ref.value;
    return {
      // "Call me now" works on its own: the agent takes the details on the call.
      category: checked ? checked.value : (forCall ? "other" : null),
      description: withoutCode(value("description") || (forCall ? "The customer asked to be called back." : "")),
      channel: "web",
      complainant: complainant,
      tracking_numbers: [],
      // An order proven by the code wins over one typed (the page shows only the proven one).
      ...(ref && ref.kind === "order_id" ? { order_id: ref.value } : value("order_id") ? { order_id: value("order_id") } : {}),
    };
  }

  // The locked-out way out: say so in the complaint itself (staff read it first), with the seller
  // id the person typed; nothing proves it, so it is their words, not an account id of the filing.
  function withoutCode(description) {
    if (!form.dataset.withoutCode || !description) return description;
    const seller = value("seller_id");
    return `I could not get the one-time code, so I am complaining without it.${seller ? ` My seller account id: ${seller}.` : ""}\n\n${description}`;
  }

  async function post(url, body, key, token) {
    const headers = { "Content-Type": "application/json", "Idempotency-Key": key };
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body) });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { response: response, data: data };
  }

  // The API words a refusal as {message} or, from FastAPI's HTTPException, {detail: {message}}.
  function messageOf(data) {
    if (!data) return "";
    return data.message || (data.detail && data.detail.message) || "";
  }

  // Show a refusal the way the API words it, and mark the fields it names.
  function refused(result, which) {
    keys[which] = newKey();
    const { response, data } = result;
    if (response.status === 401 && verified) {
      // The API no longer takes the filing token (expired, or signed with an old key).
      expireVerification();
      showErrors([], "Your one-time code verification has expired. Verify again, or send your complaint without it.");
    } else if (response.status === 422 && /^order_id:/.test(messageOf(data))) {
      // An order the order system does not know: next to the order number, the API's words below.
      // The API's own words go in the summary too, below ours: one announcement, not two.
      showErrors([["order_id", "We do not know this order number. Check it against your order confirmation."]],
                 `We were told: ${messageOf(data)}`);
    } else if (response.status === 422 && data) {
      const fields = [];
      (Array.isArray(data.errors) ? data.errors : []).forEach((d) => {
        const field = Object.keys(PLAIN).find((f) => (d.loc || []).includes(f));
        if (field && !fields.some(([f]) => f === field)) fields.push([field, PLAIN[field] || d.rule]);
      });
      if (/^complainant:/.test(messageOf(data))) fields.push(["email", EITHER]);
      showErrors(fields, messageOf(data) ? `We were told: ${messageOf(data)}` : (fields.length ? "" : "Some details are not valid."));
    } else if (response.status === 503 && which === "callback" && data && data.code === "callbacks_backlogged") {
      // The calls already queued would keep this one waiting too long (ADR 0051): nothing of the
      // request was kept, the complaint itself is filed (pressing again replays that, then asks again).
      const wait = parseInt(response.headers.get("Retry-After") || "30", 10);
      showErrors([], `Your complaint is filed, but everyone who could call you is busy: a call now would keep you waiting too long. Please press the button again in ${Math.max(1, wait)} seconds.`);
    } else if (response.status === 429) {
      const wait = parseInt(response.headers.get("Retry-After") || "60", 10);
      const what = which === "file" ? "complaints sent from here" : "call requests";
      showErrors([], `Too many ${what} for now. Please try again in ${Math.max(1, Math.ceil(wait / 60))} minute(s).`);
    } else {
      showErrors([], messageOf(data) || "Something went wrong on our side. Please try again.");
    }
  }

  async function fileOnce(forCall) {
    if (filed) return filed;
    const result = await post("/api/complaints", complaintBody(forCall), keys.file, verified && verified.token);
    if (result.response.status !== 201) { refused(result, "file"); return null; }
    filed = result.data;
    window.FilingToken.forget();  // spent: the case's own link takes over
    return filed;
  }

  async function callMeNow() {
    clearErrors();
    const phoneProblem = checkPhone(true);
    if (phoneProblem) {
      showErrors([["phone", phoneProblem]]);
      return;
    }
    if (!stillVerified()) return;
    busy(true, "Asking for your call…");
    try {
      const complaint = await fileOnce(true);
      if (!complaint) return;
      const language = navigator.language || document.documentElement.lang || "en";
      const result = await post(`/api/complaints/${encodeURIComponent(complaint.complaint_id)}/callback`,
        { phone: normalisedPhone(), preferred_language: language }, keys.callback, complaint.access_token);
      if (result.response.status !== 202) { refused(result, "callback"); return; }
      // Not "we are calling you": whether an agent is free is the case's to say, on its page.
      say("We have your request. Opening your case page…", "ok");
      leaving = true;
      window.location.assign(complaint.status_url);
    } catch (e) {
      showErrors([], "We could not reach our service. Check your connection and push the button again.");
    } finally {
      if (!leaving) busy(false);
    }
  }

  async function send(event) {
    event.preventDefault();
    clearErrors();
    const body = complaintBody(false);
    const problems = [
      ["category", body.category ? "" : "Choose what your complaint is about."],
      ["phone", checkPhone(false)],
      ["description", body.description ? "" : "Tell us what happened."],
      ["email", body.complainant.email || body.complainant.phone || body.complainant.seller_id ? "" : EITHER],
    ].filter(([, text]) => text);
    if (problems.length) { showErrors(problems); return; }
    if (!stillVerified()) return;
    busy(true, "Sending your complaint…");
    try {
      const complaint = await fileOnce(false);
      if (complaint) { leaving = true; window.location.assign(complaint.status_url); }
    } catch (e) {
      showErrors([], "We could not reach our service. Check your connection and send again.");
    } finally {
      if (!leaving) busy(false);
    }
  }

  // A correction clears the field's message; the next push checks it again.
  ["description", "email", "phone", "order_id"].forEach((name) =>
    document.getElementById(name).addEventListener("input", () => fieldError(name, "")));
  form.addEventListener("change", (e) => { if (e.target.name === "category") fieldError("category", ""); });
  callButton.addEventListener("click", callMeNow);
  form.addEventListener("submit", send);
  // The order page links here with its order number ("/?order_id=…"): the customer need not type it.
  const linkedOrder = new URLSearchParams(window.location.search).get("order_id");
  if (linkedOrder) document.getElementById("order_id").value = linkedOrder.slice(0, 64);
  showVerification();
  // An order proven by the code is the one filed: no second order number to type.
  if (verified && verified.reference && verified.reference.kind === "order_id") {
    document.getElementById("order_id").closest(".field").hidden = true;
  }
})();
