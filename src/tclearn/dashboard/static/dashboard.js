/* TCLearn dashboard: charts (uPlot) and the live timeline (polling /api/blocks?since=H).
   Every value from the server is put into the page with textContent, never as HTML. */
(function () {
  "use strict";
  var KINDS = ["genesis", "increment", "rejected", "revert", "hyperparams", "membership"];
  var BLOCK_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
  var COLOURS = ["#2563eb", "#16a34a", "#d97706", "#7c3aed", "#dc2626", "#0891b2", "#db2777", "#65a30d"];

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  function pad(n, w) { var s = String(n); while (s.length < w) { s = "0" + s; } return s; }
  function fmtTime(ms) {
    var d = new Date(ms);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) + " " +
      pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2) + "." +
      pad(d.getUTCMilliseconds(), 3) + "Z";
  }
  function score(v) { return v === null || v === undefined ? "" : Number(v).toFixed(4); }
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  }

  function timelineRow(b, committee) {
    var tr = document.createElement("tr");
    var kind = KINDS.indexOf(b.kind) >= 0 ? b.kind : "genesis";
    tr.className = "row-" + kind + " fresh";
    tr.setAttribute("data-index", String(b.index));
    tr.setAttribute("data-kind", kind);
    var first = document.createElement("td");
    first.className = "num";
    var a = document.createElement("a");
    a.href = "/blocks/" + Number(b.index);
    a.textContent = String(b.index);
    first.appendChild(a);
    tr.appendChild(first);
    tr.appendChild(cell(fmtTime(b.timestamp)));
    var k = document.createElement("td");
    var chip = document.createElement("span");
    chip.className = "kind kind-" + kind;
    chip.textContent = b.kind;
    k.appendChild(chip);
    tr.appendChild(k);
    tr.appendChild(cell(b.contributor || ""));
    var votes = (b.kind === "increment" || b.kind === "rejected") ?
      "✓" + b.accepts + " ✗" + b.rejects + " of " + committee : "";
    tr.appendChild(cell(votes));
    tr.appendChild(cell(score(b.score), "num"));
    tr.appendChild(cell(score(b.g_new), "num"));
    tr.appendChild(cell((b.flagged || []).join(", ")));
    tr.appendChild(cell(b.reason || ""));
    return tr;
  }

  function chartWidth(el) { return Math.max(300, el.clientWidth - 16); }

  function scoreChart(el, s) {
    var ref = s.reference;
    var rejected = s.index.map(function (_, i) { return s.kind[i] === "rejected" ? s.candidate[i] : null; });
    var data = [s.index, s.score, rejected];
    var series = [{label: "block"},
      {label: "G score of the head", stroke: "#16a34a", width: 2, spanGaps: true},
      {label: "rejected candidate", stroke: "#dc2626", width: 0, points: {show: true, size: 6, fill: "#dc2626"}}];
    if (ref !== null && ref !== undefined) {
      data.push(s.index.map(function () { return ref; }));
      series.push({label: s.reference_label || "reference", stroke: "#64748b", dash: [6, 4], width: 1.5});
    }
    el.textContent = "";
    return new uPlot({title: "Score on G per block", width: chartWidth(el), height: 240, series: series,
      scales: {x: {time: false}}, axes: [{label: "block", incrs: BLOCK_STEPS}, {label: "score"}]}, data, el);
  }

  function strengthChart(el, s) {
    var data = [s.index];
    var series = [{label: "block"}];
    s.members.forEach(function (m, i) {
      data.push(s.strengths[m]);
      series.push({label: m, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false});
    });
    el.textContent = "";
    return new uPlot({title: "Strength S_i per block", width: chartWidth(el), height: 260, series: series,
      scales: {x: {time: false}}, axes: [{label: "block", incrs: BLOCK_STEPS}, {label: "strength"}]}, data, el);
  }

  function live(body) {
    var height = Number(body.getAttribute("data-height"));
    var committee = body.getAttribute("data-committee");
    var tbody = document.querySelector("#timeline tbody");
    var chartEl = document.getElementById("score-chart");
    var badge = document.getElementById("live");
    var chart = null;
    var pollMs = 1500;
    function drawChart() {
      if (!chartEl || typeof uPlot === "undefined") { return; }
      getJSON("/api/series").then(function (s) {
        if (chart) { chart.destroy(); }
        chart = scoreChart(chartEl, s);
        chartEl.setAttribute("data-drawn", String(s.index.length));
        if (!s.complete) { setTimeout(function () { drawChart(); refreshCards(); }, 2000); }  // still indexing
      }).catch(function () {});
    }
    function setCard(label, text) {
      var card = document.querySelector('.card[data-card="' + label + '"] .value');
      if (card) { card.textContent = text; }
    }
    function refreshCards() {
      getJSON("/api/summary").then(function (s) {
        setCard("height", String(s.height));
        setCard("head G score", s.head && s.head.score !== null ? score(s.head.score) : "–");
        KINDS.slice(1).forEach(function (k) { setCard(k, String(s.kinds[k] || 0)); });
      }).catch(function () {});
    }
    function poll() {
      getJSON("/api/blocks?since=" + height).then(function (r) {
        if (badge) { badge.className = "live on"; }
        if (r.blocks.length && tbody) {
          r.blocks.forEach(function (b) {
            tbody.insertBefore(timelineRow(b, committee), tbody.firstChild);
            height = Math.max(height, b.index);
          });
          while (tbody.rows.length > 200) { tbody.deleteRow(tbody.rows.length - 1); }
          document.getElementById("height").textContent = String(height);
          body.setAttribute("data-height", String(height));
          drawChart();
          refreshCards();
        }
        setTimeout(poll, r.more ? 50 : pollMs);
      }).catch(function () {
        if (badge) { badge.className = "live"; }
        setTimeout(poll, pollMs * 2);
      });
    }
    drawChart();
    if (body.getAttribute("data-live") === "1") { setTimeout(poll, pollMs); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.body;
    var page = body.getAttribute("data-page");
    if (page === "timeline") { live(body); }
    if (page === "members") {
      var el = document.getElementById("strength-chart");
      if (el && typeof uPlot !== "undefined") {
        getJSON("/api/series").then(function (s) {
          strengthChart(el, s);
          el.setAttribute("data-drawn", String(s.index.length));
        }).catch(function () {});
      }
    }
  });
})();
