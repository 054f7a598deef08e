// The partner team view: the team's inbox (routing), each case with its brief and SLA due time,
// and the team's three actions. Cards are built once and only their facts refreshed (every 5 s),
// so a refresh never wipes what someone is typing.
"use strict";

(function () {
  const who = Desk.requireSignIn();
  if (!who) return;
  if (!who.team) { Desk.notice("This token names no team: sign in with a partner token for your team."); return; }
  const team = encodeURIComponent(who.team);
  const { el } = Desk;
  const cards = {};
  const STATUS = { routed: "Sent to you by the routing rules", transferred: "New: not acknowledged yet",
                   acknowledged: "Acknowledged", outcome_recorded: "Outcome recorded", resolved: "Resolved",
                   closed: "Closed" };
  //: Finished: no form takes anything any more.
  const DONE = new Set(["resolved", "closed"]);
  document.getElementById("team").textContent = who.team;

  function build(complaintId) {
    const node = document.getElementById("case-card").content.firstElementChild.cloneNode(true);
    node.dataset.complaintId = complaintId;
    node.querySelector(".case-id").textContent = complaintId;
    node.querySelectorAll("form").forEach((form) => {
      form.dataset.draft = `${form.dataset.action}-${complaintId}`;
      form.querySelectorAll(".field").forEach((field, i) => {  // label ↔ input, for people and tests
        const input = field.querySelector("textarea, input");
        input.id = `${form.dataset.draft}-${i}`;
        field.querySelector("label").htmlFor = input.id;
      });
      Desk.keepDraft(form);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const body = form.dataset.action === "acknowledge" ? undefined
          : Object.fromEntries(Array.from(form.elements).filter((e) => e.name).map((e) => [e.name, e.value]));
        const result = await Desk.submit(form, (key) => Desk.routing(
          `/api/partner-teams/${team}/cases/${encodeURIComponent(complaintId)}/${form.dataset.action}`,
          { method: "POST", body: body, key: key }), refresh);
        if (result && result.ok) { form.reset(); refresh(); }
      });
    });
    cards[complaintId] = node;
    return node;
  }

  function update(node, c) {
    node.querySelector(".status").textContent = STATUS[c.status] || c.status;
    node.dataset.status = c.status;
    // A case the rules sent here (not transferred by an agent) is worked on the desk by the team's
    // agents: routing takes no acknowledgement, note or outcome from this view for it.
    const routed = c.status === "routed";
    node.querySelector(".routed-hint").hidden = !routed;
    node.querySelectorAll("form").forEach((form) => {
      form.hidden = routed || DONE.has(c.status) ||
        (form.dataset.action === "acknowledge" && c.status !== "transferred");
    });
    const sla = node.querySelector(".sla");
    sla.textContent = c.sla_due_at ? `SLA due ${Desk.when(c.sla_due_at)} (${Desk.relative(c.sla_due_at)})` : "";
    const b = c.brief || {};
    Desk.facts(node.querySelector(".brief"), [
      ["About", (c.category || "").replace(/_/g, " ")], ["From agent", c.by_agent_id],
      ["The customer asks", b.customer_asks], ["Already tried", b.tried],
      ["Evidence", (b.evidence || []).join(", ")], ["Promised", b.promised],
      ["Promised by", Desk.when(b.promised_by)], ["Received", Desk.when(c.received_at)],
      ["Acknowledged by", c.acknowledged_by],
    ]);
    node.querySelector(".notes").replaceChildren(...(c.notes || []).map((n) =>
      el("li", `${Desk.when(n.added_at)} · ${n.author}: ${n.text}`)));
    node.querySelector(".outcome").textContent = c.outcome ? `Outcome: ${c.outcome}` : "";
  }

  // What the complainant filed, from intake (once per card): a case the rules sent straight to the
  // team has no agent's brief, and the team must still know who and what (story 3's seller).
  async function loadFiling(node, complaintId) {
    node.dataset.filing = "loading";
    const answer = await Desk.intake(`/api/desk/cases/${encodeURIComponent(complaintId)}`);
    if (!answer.ok) { node.dataset.filing = ""; return; }
    const f = answer.data.filing, c = f.complainant;
    // The card's heading names the case as people say it (the id stays in data-complaint-id).
    node.querySelector(".case-id").textContent = `${answer.data.reference} · ${answer.data.category_label}`;
    Desk.facts(node.querySelector(".filing"), [
      ["In their words", f.description], ["Channel", f.channel],
      ["Name", c.display_name], ["Email", c.email], ["Phone", c.phone], ["Seller", c.seller_id],
      ["Customer", c.customer_id], ["Identity", f.assurance.replace(/_/g, " ")], ["Order", f.order_id],
      ["Filed", Desk.when(f.filed_at)],
    ]);
    node.querySelector(".filing-details").open = node.dataset.status === "routed";  // no brief to read
    node.dataset.filing = "loaded";
  }

  async function refresh() {
    const inbox = await Desk.routing(`/api/partner-teams/${team}/inbox`);
    if (!inbox.ok) { Desk.notice(Desk.messageOf(inbox.data) || "We could not load the inbox."); return; }
    Desk.notice("");
    const list = document.getElementById("inbox");
    const cases = [...inbox.data.cases].sort(byUrgency);
    cases.forEach((c) => {
      const node = cards[c.complaint_id] || build(c.complaint_id);
      update(node, c);
      if (!node.dataset.filing) loadFiling(node, c.complaint_id);
    });
    // Reorder only when the order changed: moving a card would take the keyboard focus out of it.
    const order = cases.map((c) => c.complaint_id);
    if (order.join() !== Array.from(list.children).map((n) => n.dataset.complaintId).join()) {
      list.replaceChildren(...order.map((id) => cards[id]));
    }
  }

  // Open cases first, the soonest SLA due first; cases without a clock (sent by the rules) next;
  // finished ones (resolved, closed) last.
  function byUrgency(a, b) {
    const rank = (c) => (DONE.has(c.status) ? 2 : c.sla_due_at ? 0 : 1);
    return rank(a) - rank(b) || (a.sla_due_at || "").localeCompare(b.sla_due_at || "") ||
      (a.received_at || "").localeCompare(b.received_at || "");
  }

  async function loop() {
    try { await refresh(); } catch (e) { Desk.notice("We cannot reach routing right now; we will keep trying."); }
    setTimeout(loop, 5000);
  }
  loop();
})();
