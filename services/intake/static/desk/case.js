// The case page: the filing, the other complaints about its order, the staff timeline and the
// customer (intake), the case's state, its callbacks and every action (routing), the packages
// (carrier, when its URL is set). Each form keeps a draft (for a sign-in in between); a refusal is
// shown where it belongs; a conflict loads the fresh state instead of overwriting it.
"use strict";

(function () {
  const who = Desk.requireSignIn();
  if (!who) return;
  const complaintId = document.getElementById("case").dataset.complaintId;
  const id = encodeURIComponent(complaintId);
  const { el } = Desk;
  const STATUS = { open: "Open", transferred: "With a partner team", resolved: "Resolved", closed: "Closed" };

  const CARRIERS = { fedex: "FedEx", ups: "UPS", usps: "USPS", auspost: "Australia Post" };
  const words = (value) => (value || "").replace(/_/g, " ");

  // The carrier panel: the order in one sentence and a row per package, from carrier's API;
  // scans and failures are in the timeline. "Re-check" asks the carriers again now.
  const carrierPanel = {
    id: "carrier-panel",
    load(base, node) {
      const path = `/api/complaints/${id}`;
      const form = node.querySelector("#carrier-recheck");
      async function refresh() {
        try { showShipments(node, await Desk.call(base, `${path}/shipments`)); } catch (e) {
          node.querySelector("#carrier-summary").textContent = "We cannot reach the carrier service right now; we will keep trying.";
        }
        setTimeout(refresh, 5000);
      }
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const result = await Desk.submit(form, (key) => Desk.call(base, `${path}/recheck`, { method: "POST", key: key }));
        if (result && (result.ok || result.status === 404)) showShipments(node, result);
      });
      refresh();
    },
  };

  function showShipments(node, answer) {
    const summary = node.querySelector("#carrier-summary"), packages = node.querySelector("#carrier-packages");
    if (!answer.ok) {
      delete node.dataset.signature;
      summary.textContent = answer.status === 404 ? "No shipment is being tracked for this case."
        : Desk.messageOf(answer.data) || `The carrier service answered ${answer.status}.`;
      if (answer.status === 404) packages.replaceChildren();
      return;
    }
    const signature = JSON.stringify(answer.data);
    if (node.dataset.signature === signature) return;  // unchanged: leave it be for screen readers
    node.dataset.signature = signature;
    const view = answer.data;
    summary.textContent = view.summary[0].toUpperCase() + view.summary.slice(1) +
      (view.order_problem ? ` (the order could not be looked up: ${words(view.order_problem)})` : "");
    const table = el("table", undefined, "packages");
    const head = el("tr");
    ["Carrier", "Tracking number", "Status", "Items", "New estimate", "Can intercept"].forEach((h) => {
      const th = el("th", h);
      th.scope = "col";
      head.append(th);
    });
    table.append(el("caption", `Packages of order ${view.order_id || "(none named)"}`), el("thead"), el("tbody"));
    table.tHead.append(head);
    view.packages.forEach((p) => {
      const row = el("tr");
      row.dataset.trackingNumber = p.tracking_number;
      const items = el("td", `${p.item_count} item${p.item_count === 1 ? "" : "s"}`);
      if (p.items.length) items.append(el("span", p.items.join(", "), "skus"));
      row.append(el("td", CARRIERS[p.carrier] || p.carrier), el("td", p.tracking_number, "mono"),
        el("td", words(p.status) + (p.failure ? ` (could not ask: ${words(p.failure)})` : "")), items,
        el("td", p.estimated_delivery_by ? Desk.when(p.estimated_delivery_by) : "—"),
        el("td", p.can_intercept ? "yes" : "no"));
      table.tBodies[0].append(row);
    });
    packages.replaceChildren(table);
  }

  // Panels of other services: each runs only when the page rendered its element, i.e. when its
  // service's URL is set (notify's closure loop would be the next).
  const PANELS = [carrierPanel];

  function renderFiling(view) {
    const f = view.filing, c = f.complainant;
    Desk.facts(document.getElementById("filing"), [
      ["Reference", view.reference], ["About", view.category_label], ["In their words", f.description], ["Channel", f.channel],
      ["Name", c.display_name], ["Email", c.email], ["Phone", c.phone], ["Customer", c.customer_id],
      ["Seller", c.seller_id], ["Identity", f.assurance.replace(/_/g, " ")], ["Order", f.order_id],
      ["Tracking", (f.tracking_numbers || []).join(", ")], ["Filed", Desk.when(f.filed_at)],
    ]);
    const order = document.getElementById("action-order_id");
    if (f.order_id && !order.value) order.value = f.order_id;
  }

  // The other people's complaints about the same order, as intake's API relates them (each
  // person has a case of their own): who, how and when, and a link to their case.
  function renderRelated(related) {
    const box = document.getElementById("related");
    const signature = JSON.stringify(related || []);
    if (box.dataset.signature === signature) return;  // unchanged: keep the links under the pointer
    box.dataset.signature = signature;
    box.hidden = !(related || []).length;
    document.getElementById("related-list").replaceChildren(...(related || []).map((other) => {
      const w = other.who, li = el("li");
      const name = [w.display_name, w.email, w.phone, w.social_handle, w.customer_id && `customer ${w.customer_id}`]
        .filter(Boolean).join(", ");
      const a = el("a", other.complaint_id, "mono");
      a.href = `/desk/cases/${encodeURIComponent(other.complaint_id)}`;
      const how = `by ${other.channel} on ${Desk.when(other.filed_at)} (${words(other.assurance)})`;
      li.append(`${name || "someone"}, ${how}: `, a);
      return li;
    }));
  }

  function renderCustomer(customer) {
    const box = document.getElementById("customer");
    const signature = JSON.stringify(customer);
    if (box.dataset.signature === signature) return;  // unchanged: keep the links and the focus
    box.dataset.signature = signature;
    box.replaceChildren(...Object.entries(customer).map(([key, seen]) => {
      const div = el("div", undefined, "identifier");
      div.append(el("h3", key, "mono"));
      const list = el("ul", undefined, "plain");
      seen.complaints.forEach((other) => {
        const li = el("li");
        const a = el("a", other === complaintId ? `${other} (this case)` : other, "mono");
        a.href = `/desk/cases/${encodeURIComponent(other)}`;
        li.append("Complaint ", a);
        list.append(li);
      });
      seen.orders.forEach((order) => list.append(el("li", `Order ${order}`)));
      seen.accounts.forEach((account) => list.append(el("li", `Account ${account}`)));
      div.append(list);
      return div;
    }));
    if (!box.children.length) box.append(el("p", "No contact details were given.", "hint"));
  }

  function renderTimeline(entries) {
    const list = document.getElementById("timeline");
    const signature = JSON.stringify(entries);
    if (list.dataset.signature === signature) return;
    const first = list.dataset.signature === undefined;
    list.dataset.signature = signature;
    const before = list.children.length;
    if (!first && entries.length > before) {
      Desk.announce(`New on the timeline: ${entries.slice(before).map((e) => e.summary).join("; ")}`.slice(0, 300));
    }
    list.replaceChildren(...entries.map((e) => {
      const li = el("li", undefined, e.internal ? "internal" : "");
      const time = el("time", Desk.when(e.time));
      time.dateTime = e.time;
      li.append(time, el("span", e.summary), el("span", e.internal ? `${e.source} · internal` : e.source, "tag"));
      return li;
    }));
  }

  function renderState(state) {
    Desk.facts(document.getElementById("routing-state"), [
      ["Status", STATUS[state.status] || state.status], ["Partner team", state.team_id],
      ["Acknowledged by the team", state.team_id ? (state.acknowledged ? "yes" : "not yet") : null],
      ["Routed by the rules to", state.routed_team_id],
      ["Last change", Desk.when(state.last_change_at)],
    ]);
    const dl = document.getElementById("routing-state");
    if (dl.dataset.status && dl.dataset.status !== state.status) Desk.announce(`Status now: ${STATUS[state.status] || state.status}.`);
    dl.dataset.status = state.status;
    const timers = document.getElementById("timers");
    const signature = JSON.stringify(state.timers || []);
    if (timers.dataset.signature !== signature) timers.dataset.signature = signature;
    else return state.callbacks && renderCallbacks(state.callbacks);
    timers.replaceChildren(...(state.timers || []).map((t) =>
      el("li", `${t.name.startsWith("partner_sla") ? "Partner SLA" : t.name} due ${Desk.when(t.due_at)} (${Desk.relative(t.due_at)})` +
        (t.fired ? ": fired, escalated" : ""), t.fired ? "fired" : "")));
    if (state.callbacks) renderCallbacks(state.callbacks);  // an action's answer leaves them out
  }

  // The case's callbacks; the agent a callback went to says when the customer is on the line.
  function renderCallbacks(callbacks) {
    const box = document.getElementById("callbacks");
    const signature = JSON.stringify(callbacks);
    if (box.dataset.signature === signature) return;  // a re-render would drop a click in flight
    box.dataset.signature = signature;
    box.hidden = !callbacks.length;
    document.getElementById("callback-list").replaceChildren(...callbacks.map(callbackItem));
  }

  function callbackItem(callback) {
    const li = el("li", undefined, `callback ${callback.status}`);
    li.dataset.callbackId = callback.callback_id;
    if (callback.status === "connected") {
      li.append(el("span", `Call connected at ${Desk.when(callback.connected_at)} (${callback.agent_id})`));
      return li;
    }
    li.append(el("span", `Dialling the customer for ${callback.agent_id} since ${Desk.when(callback.dispatched_at)}`));
    if (callback.agent_id !== who.sub) return li;
    const form = el("form");
    form.noValidate = true;
    const button = el("button", "Mark the call connected", "button");
    button.type = "submit";
    const message = el("div", undefined, "form-message");
    message.setAttribute("aria-live", "polite");
    form.append(button, message);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const path = `/api/cases/${id}/callbacks/${encodeURIComponent(callback.callback_id)}/connected`;
      const result = await Desk.submit(form, (key) => Desk.routing(path, { method: "POST", key: key }), fresh);
      if (result && result.ok) { renderState(result.data); loadView(); }
    });
    li.append(form);
    return li;
  }

  async function loadState() {
    const state = await Desk.routing(`/api/cases/${id}`);
    if (state.ok) renderState(state.data);
    else Desk.notice(Desk.messageOf(state.data) || "We could not load the case from routing.");
  }

  async function loadView() {
    const view = await Desk.intake(`/api/desk/cases/${id}`);
    if (view.ok) {
      renderFiling(view.data);
      renderRelated(view.data.related);
      renderCustomer(view.data.customer);
      renderTimeline(view.data.timeline);
    } else if (view.status !== 404) Desk.notice(Desk.messageOf(view.data));
  }

  async function loadTeams() {
    const roster = await Desk.routing("/api/agents");
    if (!roster.ok) return;
    const select = document.getElementById("transfer-team_id");
    const kept = select.value || (JSON.parse(sessionStorage.getItem(`draft:${location.pathname}:transfer`) || "{}").team_id);
    select.replaceChildren(...roster.data.partner_teams.map((t) => {
      // The team's name only: a long option widens the select past a phone's screen.
      const option = el("option", t.name || t.team_id);
      option.value = t.team_id;
      return option;
    }));
    if (kept) select.value = kept;
  }

  // A conflict: show the state as it is now, and say so next to it.
  async function fresh(data) {
    const conflict = document.getElementById("conflict");
    conflict.textContent = `Someone else acted first: ${Desk.messageOf(data)} Below is the case as it is now.`;
    conflict.hidden = false;
    await loadState();
    await loadView();
  }

  // What each form sends, read from its fields; the API judges it.
  const BODIES = {
    transfer: (f) => ({ team_id: f.team_id.value, brief: {
      customer_asks: f["brief.customer_asks"].value, tried: f["brief.tried"].value,
      evidence: Desk.lines(f["brief.evidence"].value), promised: f["brief.promised"].value,
      promised_by: f["brief.promised_by"].value ? new Date(f["brief.promised_by"].value).toISOString() : null } }),
    actions: (f) => ({ action: f.action.value, order_id: f.order_id.value.trim(), items: items(f.items.value),
      amount: f["amount.value"].value.trim() ? { value: f["amount.value"].value.trim(),
        currency: f["amount.currency"].value.trim().toUpperCase() } : null }),
    resolve: (f) => ({ recap: f.recap.value, next_steps: Desk.lines(f.next_steps.value) }),
    notes: (f) => ({ text: f.text.value }),
    escalate: (f) => ({ reason: f.reason.value, detail: f.detail.value }),
    release: () => ({}),
  };

  // "SKU-1 x 2" per line; a line that is not one is sent as is (quantity 0), for the API to refuse.
  function items(text) {
    return Desk.lines(text).map((line) => {
      const m = /^(\S+)\s*(?:[x×*]\s*(\d+))?$/i.exec(line);
      return m ? { sku: m[1], quantity: m[2] ? parseInt(m[2], 10) : 1 } : { sku: line, quantity: 0 };
    });
  }

  document.querySelectorAll("form[data-action]").forEach((form) => {
    const action = form.dataset.action;
    if (action !== "release") Desk.keepDraft(form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = await Desk.submit(form, (key) => Desk.routing(`/api/cases/${id}/${action}`,
        { method: "POST", body: BODIES[action](form.elements), key: key }), fresh);
      if (result && result.ok) {
        if (action !== "release") form.reset();
        if (action === "actions") form.elements["amount.currency"].value = "GBP";
        document.getElementById("conflict").hidden = true;
        if (result.data.status) renderState(result.data);
        loadView();
      }
    });
  });
  const currency = document.getElementById("action-amount-currency");
  if (!currency.value) currency.value = "GBP";

  async function loop() {
    try { await Promise.all([loadState(), loadView()]); } catch (e) { Desk.notice("We cannot reach a service right now; we will keep trying."); }
    setTimeout(loop, 3000);
  }
  loadTeams();
  loop();
  PANELS.forEach((panel) => {
    const node = document.getElementById(panel.id);
    if (node && node.dataset.url) panel.load(node.dataset.url, node);
  });
})();
