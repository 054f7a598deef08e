// Sign-in: a pasted token, or (local stack only) one minted by the development sign-in. Either is
// checked by intake (/api/desk/me) before it is kept, so a typo is caught here, not on the next page.
"use strict";

(function () {
  const ROLES = Desk.audience === "partner" ? ["partner"] : ["agent", "supervisor"];
  if (new URLSearchParams(location.search).get("expired")) document.getElementById("expired").hidden = false;

  async function useToken(form, token) {
    const response = await fetch("/api/desk/me", { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    const data = await response.json().catch(() => null);
    if (!response.ok) return { ok: false, status: 422, data: { field: "token", message: Desk.messageOf(data) || "This token is not valid." } };
    if (!ROLES.includes(data.role)) {
      return { ok: false, status: 422, data: { field: "token", message: `This page is for ${ROLES.join(" or ")} tokens; this one is for a ${data.role}.` } };
    }
    Desk.signIn(token);
    Desk.afterSignIn();
    return { ok: true };
  }

  const tokenForm = document.getElementById("token-form");
  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    Desk.submit(tokenForm, () => useToken(tokenForm, tokenForm.elements.token.value.trim()));
  });

  const dev = document.getElementById("dev-form");
  if (dev) {
    dev.addEventListener("submit", (event) => {
      event.preventDefault();
      Desk.submit(dev, async () => {
        const body = { role: dev.elements.role.value, sub: dev.elements.sub.value.trim() };
        if (dev.elements.team) body.team = dev.elements.team.value.trim();
        const response = await fetch("/api/desk/dev-sign-in", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        const data = await response.json().catch(() => null);
        if (!response.ok) return { ok: false, status: response.status, data: data };
        return useToken(dev, data.token);
      });
    });
  }
})();
