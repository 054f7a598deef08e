// My queue: the cases and callbacks routing gives this agent, and the callbacks no agent has yet.
// Refreshed every 5 s in place: a card is built once per case and only its changing words are
// rewritten, so the keyboard focus stays where it was, and only what changed is read out
// (#announce: "New for you: …", "No longer waiting: …"). Each link names the case: who, what, how old.
"use strict";

(function () {
  const who = Desk.requireSignIn();
  if (!who) return;
  const agent = encodeURIComponent(who.sub);
  const { el } = Desk;
  const described = {};  // complaint id -> {person, about, words}, asked once of intake

  async function describe(complaintId) {
    if (!(complaintId in described)) {
      const answer = await Desk.intake(`/api/desk/cases/${encodeURIComponent(complaintId)}`);
      if (!answer.ok) return null;  // not in intake's view yet: the next refresh asks again
      const f = answer.data.filing;
      described[complaintId] = { person: Desk.person(f.complainant), about: answer.data.category_label,
                                 words: f.description.slice(0, 140), reference: answer.data.reference };
    }
    return described[complaintId];
  }

  function keyOf(entry) { return entry.callback_id || entry.complaint_id; }

  function build(entry, mine) {
    const li = el("li", undefined, "card" + (entry.callback_id ? " callback" : ""));
    li.dataset.key = keyOf(entry);
    li.dataset.complaintId = entry.complaint_id;
    const link = el("a", "A case", "case-link");
    link.href = `/desk/cases/${encodeURIComponent(entry.complaint_id)}`;
    const kind = entry.callback_id ? (mine ? "Callback: call the customer now" : "Callback waiting")
      : "Written case";
    li.append(link, el("span", kind, "tag"), el("p", "", "about"), el("p", "", "hint since"));
    return li;
  }

  function set(node, text) { if (node.textContent !== text) node.textContent = text; }

  // The link's words: "Sam Okafor — Items missing from an order — 12 min" (the id stays in the URL).
  async function fill(li, entry, mine) {
    const since = mine ? entry.assigned_at : entry.queued_at;
    const d = await describe(entry.complaint_id);
    const age = since ? Desk.age(since) : "";
    if (d) {
      set(li.querySelector(".case-link"), [d.person, d.about, age && `${age} old`].filter(Boolean).join(" — "));
      set(li.querySelector(".about"), `${d.reference ? d.reference + ": " : ""}${d.words}`);
    }
    set(li.querySelector(".since"), mine ? `Yours since ${Desk.when(since)}` : `Waiting since ${Desk.when(since)}`);
    return d;
  }

  // Make ``list`` show ``entries`` without rebuilding what is already there; say what came and went.
  async function reconcile(list, entries, mine, empty) {
    const wanted = new Set(entries.map(keyOf));
    const gone = [], came = [];
    Array.from(list.children).forEach((li) => {
      if (li.dataset.key && !wanted.has(li.dataset.key)) { gone.push(li.querySelector(".case-link").textContent); li.remove(); }
      if (!li.dataset.key && entries.length) li.remove();  // the "nothing here" line
    });
    for (const entry of entries) {
      let li = list.querySelector(`li[data-key="${CSS.escape(keyOf(entry))}"]`);
      const fresh = !li;
      if (fresh) { li = build(entry, mine); list.append(li); }
      await fill(li, entry, mine);
      if (fresh && list.dataset.loaded) came.push(li.querySelector(".case-link").textContent);
    }
    if (!entries.length && !list.querySelector("li.hint")) list.replaceChildren(el("li", empty, "hint"));
    const was = list.dataset.loaded;
    list.dataset.loaded = "yes";
    if (!was) return "";
    const what = mine ? ["New for you", "No longer yours"] : ["Now waiting", "No longer waiting"];
    return [came.length ? `${what[0]}: ${came.join("; ")}.` : "", gone.length ? `${what[1]}: ${gone.join("; ")}.` : ""]
      .filter(Boolean).join(" ");
  }

  async function refresh() {
    const said = [];
    const mine = await Desk.routing(`/api/agents/${agent}/queue`);
    if (mine.status === 404) Desk.notice(`Routing does not know ${who.sub} yet: ask a supervisor to add you to the roster.`);
    else if (!mine.ok) Desk.notice(Desk.messageOf(mine.data) || "We could not load your queue.");
    else {
      Desk.notice("");
      said.push(await reconcile(document.getElementById("my-queue"), mine.data.cases, true, "Nothing for you right now."));
    }
    const roster = await Desk.routing("/api/agents");
    if (roster.ok) {
      const me = roster.data.agents.find((a) => a.agent_id === who.sub);
      const select = document.getElementById("availability");
      if (me && document.activeElement !== select) select.value = me.availability;
      said.push(await reconcile(document.getElementById("waiting"), roster.data.queue, false, "No one is waiting."));
    }
    Desk.announce(said.filter(Boolean).join(" "));
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
