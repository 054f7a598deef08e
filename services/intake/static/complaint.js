// The complaint page: files the complaint through the public API and, for "Call me now",
// asks for the callback too, then opens the case's status page. Someone who verified by a
// one-time code (the locked-out page) files with that filing token. No business rules here:
// what the API refuses is shown as it says it.
"use strict";

(function () {
  const E164 = /^\+[1-9]\d{6,14}$/;
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

  function fieldError(name, text) {
    const error = document.getElementById(name + "-error");
    const input = document.getElementById(name);
    error.textContent = text || "";
    if (input && input.tagName !== "FIELDSET") {
      if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }
  }

  function clearErrors() {
    ["category", "description", "email", "phone", "order_id"].forEach((name) => fieldError(name, ""));
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
      description: value("description") || (forCall ? "The customer asked to be called back." : ""),
      channel: "web",
      complainant: complainant,
      tracking_numbers: [],
      // An order proven by the code wins over one typed (the page shows only the proven one).
      ...(ref && ref.kind === "order_id" ? { order_id: ref.value } : value("order_id") ? { order_id: value("order_id") } : {}),
    };
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
      say("Your one-time code verification has expired. Verify again, or send your complaint without it.", "error");
    } else if (response.status === 422 && /^order_id:/.test(messageOf(data))) {
      // An order the order system does not know: next to the order number, the API's words below.
      fieldError("order_id", "We do not know this order number. Check it against your order confirmation.");
      say("Please check: " + messageOf(data), "error");
    } else if (response.status === 422 && data) {
      (Array.isArray(data.errors) ? data.errors : []).forEach((d) => {
        const field = Object.keys(PLAIN).find((f) => (d.loc || []).includes(f));
        if (field) fieldError(field, PLAIN[field] || d.rule);
      });
      say("Please check: " + (data.message || "some fields are not valid."), "error");
    } else if (response.status === 429) {
      const wait = parseInt(response.headers.get("Retry-After") || "60", 10);
      const what = which === "file" ? "complaints sent from here" : "call requests";
      say(`Too many ${what} for now. Please try again in ${Math.max(1, Math.ceil(wait / 60))} minute(s).`, "error");
    } else {
      say(messageOf(data) || "Something went wrong on our side. Please try again.", "error");
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
      fieldError("phone", phoneProblem);
      document.getElementById("phone").focus();
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
      say("We are calling you now.", "ok");
      leaving = true;
      window.location.assign(complaint.status_url);
    } catch (e) {
      say("We could not reach our service. Check your connection and push the button again.", "error");
    } finally {
      if (!leaving) busy(false);
    }
  }

  async function send(event) {
    event.preventDefault();
    clearErrors();
    const body = complaintBody(false);
    const problems = {
      category: body.category ? "" : "Choose what your complaint is about.",
      description: body.description ? "" : "Tell us what happened.",
      email: body.complainant.email || body.complainant.phone || body.complainant.seller_id
        ? "" : "Give an email address or a phone number so that we can answer you.",
      phone: checkPhone(false),
    };
    Object.entries(problems).forEach(([name, text]) => fieldError(name, text));
    if (Object.values(problems).some(Boolean)) return;
    if (!stillVerified()) return;
    busy(true, "Sending your complaint…");
    try {
      const complaint = await fileOnce(false);
      if (complaint) { leaving = true; window.location.assign(complaint.status_url); }
    } catch (e) {
      say("We could not reach our service. Check your connection and send again.", "error");
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
