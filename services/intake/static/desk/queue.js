// My queue: the cases and callbacks routing gives this agent, and the callbacks no agent has yet.
// Refreshed every 5 s; each case is named from intake's staff view of it.
"use strict";

(function () {
  const who = Desk.requireSignIn();
  if (!who) return;
  const agent = encodeURIComponent(who.sub);
  const { el } = Desk;
  const described = {};  // complaint id -> "category — words", asked once

  async function describe(complaintId, li) {
    if (!(complaintId in described)) {
      const answer = await Desk.intake(`/api/desk/cases/${encodeURIComponent(complaintId)}`);
      if (!answer.ok) return;  // not in intake's view yet: the next refresh asks again
      const f = answer.data.filing;
      described[complaintId] = `${answer.data.category_label}: ${f.description.slice(0, 140)}` +
        (f.complainant.display_name ? ` (${f.complainant.display_name})` : "");
    }
    li.querySelector(".about").textContent = described[complaintId];
  }

  function card(entry, mine) {
    const li = el("li", undefined, "card" + (entry.callback_id ? " callback" : ""));
    const link = el("a", entry.complaint_id, "mono");
    link.href = `/desk/cases/${encodeURIComponent(entry.complaint_id)}`;
    const kind = entry.callback_id ? (mine ? "Callback: call the customer now" : "Callback waiting")
      : "Written case";
    li.append(link, el("span", kind, "tag"), el("p", "", "about"),
      el("p", mine ? `Yours since ${Desk.when(entry.assigned_at)}` : `Waiting since ${Desk.when(entry.queued_at)}`, "hint"));
    describe(entry.complaint_id, li);
    return li;
  }

  async function refresh() {
    const mine = await Desk.routing(`/api/agents/${agent}/queue`);
    if (mine.status === 404) Desk.notice(`Routing does not know ${who.sub} yet: ask a supervisor to add you to the roster.`);
    else if (!mine.ok) Desk.notice(Desk.messageOf(mine.data) || "We could not load your queue.");
    else {
      Desk.notice("");
      const list = document.getElementById("my-queue");
      list.replaceChildren(...mine.data.cases.map((c) => card(c, true)));
      if (!mine.data.cases.length) list.append(el("li", "Nothing for you right now.", "hint"));
    }
    const roster = await Desk.routing("/api/agents");
    if (roster.ok) {
      const me = roster.data.agents.find((a) => a.agent_id === who.sub);
      const select = document.getElementById("availability");
      if (me && document.activeElement !== select) select.value = me.availability;
      const waiting = document.getElementById("waiting");
      waiting.replaceChildren(...roster.data.queue.map((w) => card(w, false)));
      if (!roster.data.queue.length) waiting.append(el("li", "No one is waiting.", "hint"));
    }
  }

  const availability = document.getElementById("availability-form");
  availability.addEventListener("submit", (event) => {
    event.preventDefault();
    Desk.submit(availability, () => Desk.routing(`/api/agents/${agent}/availability`, {
      method: "PUT", body: { availability: availability.elements.availability.value } })).then(refresh);
  });

  async function loop() {
    try { await refresh(); } catch (e) { Desk.notice("We cannot reach routing right now; we will keep trying."); }
    setTimeout(loop, 5000);
  }
  loop();
})();
