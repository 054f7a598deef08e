// The supervisors' dashboard: intake's /api/metrics figures as tiles, line and bar charts (Chart.js,
// vendored under /static/vendor, no CDN) and the breach table, refreshed on its own. Series differ
// by line dash and point shape, bars by hatching, and every chart has its numbers in a table: no
// figure is told by colour alone.
"use strict";

(function () {
  const who = Desk.requireSignIn();
  if (!who) return;
  const { el } = Desk;
  const script = document.getElementById("metrics-script");
  const DAYS = Number(script.dataset.days), REFRESH_S = Number(script.dataset.refreshS);
  if (who.role !== "supervisor") {
    Desk.notice("The customer-experience figures are for supervisors. Sign out and sign in as a supervisor.");
    return;
  }
  const INK = "#1b1f24", BLUE = "#0b5cad", GREEN = "#0a7a3d", RED = "#b3261e", PURPLE = "#6b3fa0";
  const KINDS = { waiting_for_a_human: "Waiting for a human", partner_sla_overdue: "Partner team past due",
                  disputed_closure: "Complainant said it is not closed" };
  const charts = {};

  function hatch(color) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const c = tile.getContext("2d");
    c.fillStyle = "#ffffff"; c.fillRect(0, 0, 8, 8);
    c.strokeStyle = color; c.lineWidth = 2;
    c.beginPath(); c.moveTo(0, 8); c.lineTo(8, 0); c.moveTo(-2, 2); c.lineTo(2, -2); c.moveTo(6, 10); c.lineTo(10, 6); c.stroke();
    return c.createPattern(tile, "repeat");
  }

  // A line's look: its dash and its point shape tell it apart in greyscale too.
  const LOOKS = [{ dash: [], point: "circle", color: BLUE }, { dash: [8, 5], point: "triangle", color: RED },
                 { dash: [2, 4], point: "rect", color: INK }, { dash: [10, 4, 2, 4], point: "rectRot", color: PURPLE }];

  function lineSet(label, data, i) {
    const look = LOOKS[i];
    return { label, data, borderColor: look.color, backgroundColor: look.color, borderDash: look.dash,
             pointStyle: look.point, pointRadius: 5, borderWidth: 2, spanGaps: true, tension: 0 };
  }

  function barSet(label, data, color, hatched) {
    return { label, data, borderColor: color, borderWidth: 2, backgroundColor: hatched ? hatch(color) : color };
  }

  // Chart.js draws the numbers on the bars itself (a tiny plugin), so a bar's size is never the only clue.
  const barLabels = {
    id: "barLabels",
    afterDatasetsDraw(chart) {
      if (chart.config.type !== "bar") return;
      const ctx = chart.ctx;
      ctx.save(); ctx.fillStyle = INK; ctx.font = "600 12px system-ui, sans-serif"; ctx.textAlign = "center";
      chart.data.datasets.forEach((set, i) => chart.getDatasetMeta(i).data.forEach((bar, j) => {
        if (set.data[j] !== null && set.data[j] !== undefined) ctx.fillText(String(set.data[j]), bar.x, bar.y - 4);
      }));
      ctx.restore();
    },
  };

  function draw(id, type, labels, datasets, yTitle, percent) {
    if (typeof Chart === "undefined") return;  // the library failed to load: the tables still tell it all
    const options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { labels: { usePointStyle: true, color: INK, boxWidth: 28 } } },
      scales: { y: { beginAtZero: true, title: { display: true, text: yTitle, color: INK },
                     ticks: { color: INK, callback: percent ? (v) => `${v}%` : undefined }, suggestedMax: percent ? 100 : undefined },
                x: { ticks: { color: INK } } },
    };
    if (type === "bar") options.plugins.legend.labels.usePointStyle = false;
    if (charts[id]) {
      charts[id].data.labels = labels; charts[id].data.datasets = datasets; charts[id].update();
    } else {
      charts[id] = new Chart(document.getElementById(id), { type, data: { labels, datasets }, options, plugins: [barLabels] });
    }
  }

  function table(id, head, rows) {
    const t = document.getElementById(id);
    const signature = JSON.stringify([head, rows]);
    if (t.dataset.signature === signature) return;
    t.dataset.signature = signature;
    const thead = el("thead"), tr = el("tr");
    head.forEach((h, i) => { const th = el("th", h, i ? "number" : ""); th.scope = "col"; tr.append(th); });
    thead.append(tr);
    const tbody = el("tbody");
    rows.forEach((r) => {
      const row = el("tr");
      r.forEach((v, i) => row.append(el(i ? "td" : "th", v === null || v === undefined ? "–" : String(v), i ? "number" : "")));
      tbody.append(row);
    });
    t.replaceChildren(thead, tbody);
  }

  const minutes = (s) => (s === null || s === undefined ? null : Math.round(s / 6) / 10);
  const pct = (r) => (r === null || r === undefined ? null : Math.round(r * 1000) / 10);
  const shown = (v, unit) => (v === null || v === undefined ? "–" : `${v}${unit || ""}`);

  function headline(f) {
    Desk.facts(document.getElementById("headline"), [
      ["Cases filed", shown(f.cases)], ["Closed, confirmed by the complainant", shown(pct(f.confirmed_rate), "%")],
      ["Said it is not closed", shown(pct(f.disputed_rate), "%")],
      ["Resolved at first contact", shown(pct(f.first_contact_resolution_rate), "%")],
      ["Contacts per resolution", shown(f.contacts_per_resolution === null ? null : f.contacts_per_resolution.toFixed(2))],
      ['"Call me" to connected, 9 in 10 within', shown(minutes(f.call_me_to_connected_s.p90), " min")],
      ["Reopened within 7 days", shown(pct(f.reopen_rate_7d), "%")],
      ["Partner acknowledgements late", shown(f.partner_acknowledged_late)],
      ["Messages held back by the loop guard", shown(f.held_back)],
      ["Escalated for repeated contacts", shown(f.escalated_repeated_contacts)],
      ["Opened before anyone complained", shown(f.proactive)],
    ]);
  }

  function perDay(rows) {
    const days = rows.map((r) => r.period);
    const waits = [rows.map((r) => minutes(r.figures.to_first_human_s.p50)),
                   rows.map((r) => minutes(r.figures.to_first_human_s.p90)),
                   rows.map((r) => minutes(r.figures.call_me_to_connected_s.p90))];
    const waitNames = ["First human, p50", "First human, p90", '"Call me" to connected, p90'];
    draw("chart-waits", "line", days, waits.map((d, i) => lineSet(waitNames[i], d, i)), "minutes");
    table("table-waits", ["Day", ...waitNames.map((n) => `${n} (min)`)], days.map((d, i) => [d, ...waits.map((w) => w[i])]));
    const ends = [rows.map((r) => pct(r.figures.confirmed_rate)), rows.map((r) => pct(r.figures.disputed_rate)),
                  rows.map((r) => pct(r.figures.unanswered_rate)), rows.map((r) => pct(r.figures.first_contact_resolution_rate))];
    const endNames = ["Confirmed closed", "Disputed", "No answer", "Resolved at first contact"];
    draw("chart-closure", "line", days, ends.map((d, i) => lineSet(endNames[i], d, i)), "% of cases", true);
    table("table-closure", ["Day", ...endNames.map((n) => `${n} (%)`)], days.map((d, i) => [d, ...ends.map((e) => e[i])]));
  }

  function perTeam(rows) {
    const teams = rows.filter((r) => r.group !== "(none)");
    const names = teams.map((r) => r.group);
    const series = [["Acknowledged on time", "partner_acknowledged_on_time", BLUE, false],
                    ["Acknowledged late", "partner_acknowledged_late", RED, true],
                    ["Outcome on time", "partner_outcome_on_time", GREEN, false],
                    ["Outcome late", "partner_outcome_late", INK, true]];
    draw("chart-teams", "bar", names, series.map(([label, key, color, hatched]) =>
      barSet(label, teams.map((r) => r.figures[key]), color, hatched)), "transfers");
    table("table-teams", ["Team", ...series.map((s) => s[0])], teams.map((r) => [r.group, ...series.map((s) => r.figures[s[1]])]));
  }

  function perCategory(rows) {
    const names = rows.map((r) => r.group.replace(/_/g, " "));
    draw("chart-categories", "bar", names, [barSet("Cases", rows.map((r) => r.figures.cases), BLUE, false),
      barSet("Resolved at first contact", rows.map((r) => r.figures.first_contact_resolved), GREEN, true)], "cases");
    table("table-categories", ["Category", "Cases", "Resolved at first contact", "Contacts per resolution"],
          rows.map((r, i) => [names[i], r.figures.cases, r.figures.first_contact_resolved, r.figures.contacts_per_resolution]));
  }

  function breachTable(breaches) {
    const body = document.querySelector("#breaches tbody");
    const signature = JSON.stringify(breaches.map((b) => [b.complaint_id, b.kind, Math.round(b.overdue_s / 60)]));
    if (body.dataset.signature === signature) return;
    body.dataset.signature = signature;
    if (!breaches.length) {
      const row = el("tr"), cell = el("td", "Nothing breaches: no case waits, no team is late, no closure is disputed.");
      cell.colSpan = 6; row.append(cell); body.replaceChildren(row); return;
    }
    body.replaceChildren(...breaches.map((b) => {
      const row = el("tr"), link = el("a", b.complaint_id.slice(0, 13), "mono");
      link.href = `/desk/cases/${encodeURIComponent(b.complaint_id)}`;
      const caseCell = el("td"); caseCell.append(link);
      row.append(el("td", KINDS[b.kind] || b.kind), caseCell, el("td", (b.category || "").replace(/_/g, " ")),
                 el("td", b.team || b.agent || "–"), el("td", Desk.when(b.since)), el("td", Desk.age(new Date(Date.now() - b.overdue_s * 1000).toISOString())));
      return row;
    }));
  }

  async function refresh() {
    const q = `days=${DAYS}`;
    const [daily, total, teams, categories, breaches] = await Promise.all([
      Desk.intake(`/api/metrics/figures?period=day&${q}`), Desk.intake(`/api/metrics/figures?period=window&${q}`),
      Desk.intake(`/api/metrics/figures?period=window&by=team&${q}`),
      Desk.intake(`/api/metrics/figures?period=window&by=category&${q}`), Desk.intake(`/api/metrics/breaches?${q}&limit=25`)]);
    const failed = [daily, total, teams, categories, breaches].find((a) => !a.ok);
    if (failed) { Desk.notice(Desk.messageOf(failed.data) || `The figures could not be read (${failed.status}).`); return; }
    Desk.notice("");
    headline(total.data.rows.length ? total.data.rows[0].figures : { call_me_to_connected_s: {} });
    perDay(daily.data.rows);
    perTeam(teams.data.rows);
    perCategory(categories.data.rows);
    breachTable(breaches.data.breaches);
    const at = new Date(daily.data.computed_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    document.getElementById("updated").textContent = `Updated at ${at}; refreshes every ${REFRESH_S} s.`;
    document.body.dataset.loaded = "true";
  }

  async function loop() {
    try { await refresh(); } catch (e) { Desk.notice("We could not reach the service. Trying again shortly."); }
    setTimeout(loop, REFRESH_S * 1000);
  }
  loop();
})();
