// The locked-out page: asks the public API for a one-time code at the contact on file, checks
// it, keeps the filing token for this tab and goes on to the complaint form. No business rules
// here: whether the account exists, how many codes and tries are allowed is the API's to say.
"use strict";

(function () {
  const ASK = { seller_id: "Enter your seller account id.", order_id: "Enter your order number." };
  const requestForm = document.getElementById("code-request");
  const checkForm = document.getElementById("code-check");
  const sendButton = document.getElementById("send-code");
  const verifyButton = document.getElementById("verify");
  const requestMessage = document.getElementById("request-message");
  const checkMessage = document.getElementById("check-message");
  const codeInput = document.getElementById("code");
  // What the latest code was sent for: the check must name the same reference and channel.
  let pending = null;  // {kind, value, channel, verification_id}

  function say(where, text, kind) {
    where.textContent = text || "";
    where.className = "form-message " + (kind || "");
  }

  function fieldError(name, text) {
    const input = document.getElementById(name);
    document.getElementById(name + "-error").textContent = text || "";
    if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }

  function reference() {
    const kind = requestForm.querySelector('input[name="reference"]:checked').value;
    return { kind: kind, value: document.getElementById(kind).value.trim() };
  }

  function showReferenceField() {
    const kind = reference().kind;
    requestForm.querySelectorAll("[data-reference]").forEach((field) => {
      field.hidden = field.dataset.reference !== kind;
    });
    fieldError("seller_id", ""); fieldError("order_id", "");
  }

  async function post(url, body) {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify(body) });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { response: response, data: data };
  }

  // Retry-After in seconds, said the way people say it.
  function whenToRetry(response) {
    const seconds = parseInt(response.headers.get("Retry-After") || "60", 10);
    if (seconds < 90) return "in a minute";
    const minutes = Math.ceil(seconds / 60);
    if (minutes < 55) return `in about ${minutes} minutes`;
    const hours = Math.round(seconds / 3600);
    return hours === 1 ? "in about an hour" : `in about ${hours} hours`;
  }

  function fieldsNamed(data) {
    return (data && Array.isArray(data.errors) ? data.errors : []).map((d) => (d.loc || []).slice(-1)[0]);
  }

  async function requestCode(event) {
    event.preventDefault();
    const ref = reference();
    const channel = requestForm.querySelector('input[name="channel"]:checked').value;
    fieldError(ref.kind, "");
    say(requestMessage, "");
    if (!ref.value) {
      fieldError(ref.kind, ASK[ref.kind]);
      document.getElementById(ref.kind).focus();
      return;
    }
    sendButton.disabled = true;
    say(requestMessage, "Sending your code…", "progress");
    try {
      const { response, data } = await post("/api/verification/codes", { [ref.kind]: ref.value, channel: channel });
      if (response.status === 202) {
        pending = { kind: ref.kind, value: ref.value, channel: channel, verification_id: data.verification_id };
        say(requestMessage, data.message, "ok");
        checkForm.hidden = false;
        fieldError("code", "");
        say(checkMessage, "");
        codeInput.focus();
      } else if (response.status === 429) {
        say(requestMessage, `We have sent as many codes as we can for now. Please try again ${whenToRetry(response)}.`, "error");
      } else if (response.status === 422 && fieldsNamed(data).includes(ref.kind)) {
        fieldError(ref.kind, `Check it: ${data.message}.`);
      } else if (response.status === 503) {
        say(requestMessage, "We cannot check our records right now. Please try again in a moment.", "error");
      } else {
        say(requestMessage, (data && data.message) || "Something went wrong on our side. Please try again.", "error");
      }
    } catch (e) {
      say(requestMessage, "We could not reach our service. Check your connection and try again.", "error");
    } finally {
      sendButton.disabled = false;
    }
  }

  async function verify(event) {
    event.preventDefault();
    const code = codeInput.value.replace(/\s/g, "");
    fieldError("code", "");
    say(checkMessage, "");
    if (!/^\d{6}$/.test(code)) {
      fieldError("code", "Enter the code we sent you: 6 digits.");
      codeInput.focus();
      return;
    }
    verifyButton.disabled = true;
    let leaving = false;
    say(checkMessage, "Checking your code…", "progress");
    try {
      const { response, data } = await post("/api/verification/verify", {
        [pending.kind]: pending.value, channel: pending.channel, verification_id: pending.verification_id, code: code,
      });
      if (response.status === 200) {
        window.FilingToken.save(data.filing_token, data.expires_in_s, { kind: pending.kind, value: pending.value });
        say(checkMessage, "Verified. Taking you to the complaint form…", "ok");
        leaving = true;
        window.location.assign("/?verified=1");
      } else if (response.status === 422) {
        say(checkMessage, "");
        fieldError("code", fieldsNamed(data).includes("code")
          ? "Enter the code we sent you: 6 digits."
          : "That code is wrong or expired. Check it, or send yourself a new code.");
        codeInput.focus();
      } else if (response.status === 429) {
        say(checkMessage, "");
        fieldError("code", `Too many wrong codes. Please try again ${whenToRetry(response)}, with a new code.`);
      } else {
        say(checkMessage, (data && data.message) || "Something went wrong on our side. Please try again.", "error");
      }
    } catch (e) {
      say(checkMessage, "We could not reach our service. Check your connection and try again.", "error");
    } finally {
      if (!leaving) verifyButton.disabled = false;
    }
  }

  requestForm.addEventListener("change", (e) => { if (e.target.name === "reference") showReferenceField(); });
  ["seller_id", "order_id", "code"].forEach((name) =>
    document.getElementById(name).addEventListener("input", () => fieldError(name, "")));
  requestForm.addEventListener("submit", requestCode);
  checkForm.addEventListener("submit", verify);
  showReferenceField();
})();
