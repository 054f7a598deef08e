// The status page: shows the case and its callback, polls the API every 2 s, cancels the call.
// The access token comes from this page's link and stays in this script's memory: it travels
// only in the Authorization header, never in another URL.
"use strict";

(function () {
  const POLL_MS = 2000;
  // The case view is a projection that can trail the filing by a moment: a 404 just after
  // arriving means "not there yet", later it means the link is wrong.
  const GRACE_MS = 15000;
  const openedAt = Date.now();
  let seen = false;
  const root = document.getElementById("case");
  const complaintId = root.dataset.complaintId;
  const token = new URLSearchParams(window.location.search).get("token");
  const api = `/api/complaints/${encodeURIComponent(complaintId)}`;
  const el = (id) => document.getElementById(id);
  const cancelButton = el("cancel-call");
  let callback = null;
  let stopped = false;

  const STATUS = { open: "Open", linked: "Open (joined to your earlier complaint)",
                   reopened: "Open again", resolved: "Resolved", closed: "Closed" };
  // Where "is your complaint closed?" stands (the case view's closure.state), in the page's words;
  // the buttons show only while the question takes an answer.
  const CLOSURE = {
    asked: "We think we have solved it. Please tell us whether that is so.",
    closed_unconfirmed: "We closed it as we did not hear from you. If it is not solved, tell us.",
    answered: "Thank you: we have your answer.",
    confirmed: "You told us it is closed. Thank you.",
    disputed: "You told us it is not solved: your case is open again and an agent is on it.",
  };
  const ANSWERABLE = new Set(["asked", "closed_unconfirmed"]);
  const CANCELLABLE = new Set(["requested", "queued"]);

  // Only touch the text when it changes, so that screen readers do not repeat it every 2 s.
  function show(id, text) {
    if (el(id).textContent !== text) el(id).textContent = text;
  }

  // A call waiting or under way is told by the case's "what happens next" (the server's words,
  // from the case's state); these are the words for a call that is over or was never asked for.
  const CALL_OVER = {
    none: ["You have not asked us to call you.", "If you would rather talk, leave your number and we call you."],
    ended: ["The call has ended.", "If you need us again, reply to our email or ask for another call."],
    cancelled: ["Cancelled: we will not call you.", "You can still write to us or ask for a call again."],
  };

  function renderCallback(cb, next) {
    callback = cb;
    const state = cb ? cb.state : "none";
    const [title, detail] = CALL_OVER[state] || [next.title, next.detail];
    show("callback-state", title);
    show("callback-detail", detail);
    // A call waiting or under way is the page's headline already ("What happens next"): not twice.
    el("callback-state").hidden = el("callback-detail").hidden = !(state in CALL_OVER);
    el("callback-state").dataset.state = state;
    cancelButton.hidden = !(cb && CANCELLABLE.has(cb.state));
    el("ask-call").hidden = !next.can_ask_for_call;
  }

  // "By 14:05 today" / "By Tue 3 Mar, 14:05": when the customer hears from us at the latest.
  function byWhen(iso) {
    const date = new Date(iso);
    if (isNaN(date)) return "";
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const today = new Date().toDateString() === date.toDateString();
    return today ? `By ${time} today` : `By ${date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })}, ${time}`;
  }

  function renderNext(next) {
    show("next-title", next.title);
    show("next-detail", next.detail || "");
    const by = next.by ? (next.state === "call_dialling" ? "" : byWhen(next.by)) : "";
    show("next-by", by);
    el("next-by").hidden = !by;
    if (el("next").dataset.state !== next.state) {
      // Read out what changed, once: not the whole page every 2 s.
      if (el("next").dataset.state) show("announce", `${next.title} ${by}`.trim());
      el("next").dataset.state = next.state;
    }
  }

  function renderShipment(shipment) {
    el("shipment").hidden = !shipment;
    if (shipment) show("shipment-summary", shipment.summary[0].toUpperCase() + shipment.summary.slice(1) + ".");
  }

  function renderTimeline(entries) {
    const list = el("timeline");
    const items = (entries || []).map((entry) => {
      const li = document.createElement("li");
      const when = document.createElement("time");
      when.dateTime = entry.time;
      const date = new Date(entry.time);
      when.textContent = isNaN(date) ? entry.time : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      const what = document.createElement("span");
      what.textContent = entry.summary;
      li.append(when, what);
      return li;
    });
    const signature = JSON.stringify(entries || []);
    if (list.dataset.signature !== signature) {
      list.dataset.signature = signature;
      list.replaceChildren(...items);
    }
  }

  function renderOutcomes(outcomes) {
    el("outcome").hidden = !(outcomes && outcomes.length);
    const signature = JSON.stringify(outcomes || []);
    const list = el("outcomes");
    if (list.dataset.signature === signature) return;
    list.dataset.signature = signature;
    list.replaceChildren(...(outcomes || []).map((o) => {
      const li = document.createElement("li");
      li.textContent = o.text;
      (o.next_steps || []).forEach((step) => {
        const next = document.createElement("p");
        next.className = "hint";
        next.textContent = `Next: ${step}`;
        li.append(next);
      });
      return li;
    }));
  }

  function renderClosure(closure) {
    el("closure").hidden = !closure;
    if (!closure) return;
    show("closure-state", CLOSURE[closure.state] || "");
    el("closure-form").hidden = !ANSWERABLE.has(closure.state);
  }

  function render(view) {
    show("category", view.category_label || view.category || "");
    show("status", STATUS[view.status] || (view.status ? view.status[0].toUpperCase() + view.status.slice(1) : ""));
    renderNext(view.next_step);
    renderCallback(view.callback, view.next_step);
    renderShipment(view.shipment);
    renderOutcomes(view.outcomes);
    renderClosure(view.closure);
    renderTimeline(view.timeline);
  }

  function notice(text) {
    show("page-message", text);
    el("page-message").className = "form-message" + (text ? " error" : "");
  }

  function fail(text) {
    stopped = true;
    show("callback-state", "");
    notice(text);
  }

  async function poll() {
    if (stopped) return;
    try {
      const response = await fetch(api, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (response.status === 404 && !seen && Date.now() - openedAt < GRACE_MS) {
        setTimeout(poll, POLL_MS / 4);
        return;
      }
      if (response.status === 404 || response.status === 401) {
        fail("We cannot find this complaint. Please use the link we sent you.");
        return;
      }
      if (response.ok) {
        seen = true;
        render(await response.json());
        notice("");
      }
    } catch (e) {
      notice("We cannot reach our service right now; we will keep trying.");
    }
    setTimeout(poll, POLL_MS);
  }

  async function cancel() {
    if (!callback) return;
    cancelButton.disabled = true;
    try {
      const response = await fetch(`${api}/callback/${encodeURIComponent(callback.callback_id)}`,
        { method: "DELETE", headers: { Authorization: "Bearer " + token } });
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      if (response.ok && data) { cancelButton.hidden = true; show("callback-state", CALL_OVER.cancelled[0]); }
      else notice((data && (data.message || (data.detail && data.detail.message))) || "We could not cancel the call. Please try again.");
    } catch (e) {
      notice("We could not reach our service. Please try again.");
    } finally {
      cancelButton.disabled = false;
    }
  }

  async function answerClosure(event) {
    event.preventDefault();
    const answer = event.submitter ? event.submitter.value : "yes";
    const reason = answer === "no" ? el("closure-reason").value.trim() : "";
    show("closure-reason-error", "");
    const buttons = el("closure-form").querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const response = await fetch(`${api}/closure`, {
        method: "POST", body: JSON.stringify({ answer, reason }),
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" } });
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      const message = data && (data.message || (data.detail && (data.detail.message ||
        (Array.isArray(data.detail) && data.detail.map((d) => d.msg).join("; ")))));
      if (response.ok && data) renderClosure(data.closure);
      else if (response.status === 422 && answer === "no") show("closure-reason-error", message || "Please shorten your answer.");
      else if (response.status === 409 && data && data.closure) renderClosure(data.closure);
      else notice(message || "We could not record your answer. Please try again.");
    } catch (e) {
      notice("We could not reach our service. Please try again.");
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // Ask for a call from the case page: the same API as the complaint form's "Call me now".
  const E164 = /^\+[1-9]\d{6,14}$/;
  let callKey = null;
  async function askForCall(event) {
    event.preventDefault();
    const raw = el("call-phone").value.replace(/[\s().-]/g, "");
    const phone = raw.startsWith("00") ? "+" + raw.slice(2) : raw;
    const input = el("call-phone");
    if (!E164.test(phone)) {
      show("call-phone-error", phone ? "Enter the phone number with its country code, starting with +, for example +44 7700 900123."
        : "Enter your phone number so that we can call you.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    show("call-phone-error", "");
    input.removeAttribute("aria-invalid");
    const button = el("ask-call").querySelector("button");
    button.disabled = true;
    callKey = callKey || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    try {
      const response = await fetch(`${api}/callback`, { method: "POST", body: JSON.stringify({
        phone: phone, preferred_language: navigator.language || "en" }), headers: {
        Authorization: "Bearer " + token, "Content-Type": "application/json", "Idempotency-Key": callKey } });
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      if (response.status === 202) {
        callKey = null;
        el("ask-call").hidden = true;
        show("announce", "We have your request: an agent will call you shortly.");
        el("next-title").focus();
      } else {
        callKey = null;
        show("call-phone-error", (data && (data.message || (data.detail && data.detail.message))) ||
          "We could not ask for your call. Please try again.");
      }
    } catch (e) {
      notice("We could not reach our service. Please try again.");
    } finally {
      button.disabled = false;
    }
  }
  el("next-title").tabIndex = -1;
  el("ask-call").addEventListener("submit", askForCall);

  el("closure-no").addEventListener("click", () => {
    el("closure-reason-field").hidden = false;
    el("closure-reason").focus();
  });
  el("closure-form").addEventListener("submit", answerClosure);
  cancelButton.addEventListener("click", cancel);
  if (!token) fail("This link is missing its access code. Please use the full link we sent you.");
  else poll();
})();
