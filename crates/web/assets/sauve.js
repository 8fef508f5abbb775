// sauve's page script: the live parts only. Every page works without it
// (forms post and the server answers with a page); with it, dates show in
// the viewer's zone, the thermometer moves with the engine's events, and
// the Backup, Stop and Acknowledge buttons act without a reload.
"use strict";

(function () {
  var csrf = document.querySelector('meta[name="csrf-token"]');
  csrf = csrf ? csrf.getAttribute("content") : "";

  function localTimes(root) {
    var opts = {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
      timeZoneName: "short"
    };
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d.getTime())) {
        t.textContent = d.toLocaleString(undefined, opts);
        t.title = t.getAttribute("datetime");
      }
    });
  }
  localTimes(document);

  function human(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n.toFixed(0) : n < 10 ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
  }

  function seconds(s) {
    if (!isFinite(s) || s < 0) { return "…"; }
    if (s < 60) { return Math.round(s) + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s"; }
    return Math.floor(s / 3600) + " h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + " min";
  }

  function replace(id, url) {
    var el = document.getElementById(id);
    if (!el) { return Promise.resolve(); }
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { return; }
      return r.text().then(function (html) {
        el.innerHTML = html;
        localTimes(el);
        bindForms(el);
      });
    });
  }

  // Forms marked data-async post with the CSRF header and stay on the page.
  function bindForms(root) {
    root.querySelectorAll("form[data-async]").forEach(function (form) {
      if (form.dataset.bound) { return; }
      form.dataset.bound = "1";
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var button = form.querySelector("button");
        if (button) { button.disabled = true; }
        var message = document.getElementById("action-message");
        fetch(form.action, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
          body: new URLSearchParams(new FormData(form))
        }).then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (body) {
            if (message) {
              message.textContent = body.message || "";
              message.className = "notice " + (r.ok ? "done" : "error");
              message.hidden = !body.message;
            }
            if (!r.ok && button) { button.disabled = false; }
            if (form.dataset.async === "alerts") { replace("alerts", "/parts/alerts"); }
          });
        }).catch(function () {
          if (message) {
            message.textContent = "The server did not answer; the page will reload.";
            message.className = "notice error";
            message.hidden = false;
          }
        }).finally(function () {
          if (button && form.dataset.async !== "backup") { button.disabled = false; }
        });
      });
    });
  }
  bindForms(document);

  var run = document.getElementById("run");
  if (!run || typeof EventSource === "undefined") { return; }

  var bar = document.getElementById("run-progress");
  var phase = document.getElementById("run-phase");
  var percent = document.getElementById("run-percent");
  var amount = document.getElementById("run-bytes");
  var rate = document.getElementById("run-rate");
  var eta = document.getElementById("run-eta");
  var file = document.getElementById("run-file");
  var title = document.getElementById("run-title");
  var backupButton = document.getElementById("backup-button");
  var stopButton = document.getElementById("stop-button");
  var stopForm = document.getElementById("stop-form");
  var first = null;
  // The trigger of the run shown (the page may be made while it runs).
  var trigger = run.dataset.trigger || "";
  var phases = {
    "precheck": "checking",
    "waiting-lock": "waiting for writes to end",
    "data": "copying the data",
    "structure": "copying the structure",
    "attachments": "copying the attachments",
    "verify": "verifying",
    "commit": "committing",
    "retention": "deleting old sets"
  };

  function show(on) {
    run.hidden = !on;
    if (on) { delete run.dataset.ended; }
    if (stopForm) { stopForm.hidden = !on; }
    if (stopButton) { stopButton.disabled = !on; }
    if (backupButton) { backupButton.disabled = on; }
  }

  // An ended run's card shows its final state only: no Stop, no rate or
  // time left, no current file, and the number of its set, or none when
  // it made none (as the last backup information says).
  function ended(e) {
    if (e.status === 0 || e.status === -43) { bar.value = bar.max; percent.textContent = "100 %"; }
    phase.textContent = "ended: " + e.status + " " + e.status_text;
    var by = trigger ? " (" + trigger + ")" : "";
    title.textContent = e.number > 0
      ? "Backup " + String(e.number).padStart(4, "0") + " ended" + by
      : "The backup ended without an archive" + by;
    rate.textContent = "";
    eta.textContent = "";
    file.textContent = "";
    run.dataset.ended = String(e.status);
    if (stopForm) { stopForm.hidden = true; }
    if (stopButton) { stopButton.disabled = true; }
    if (backupButton) { backupButton.disabled = false; }
  }

  function progress(done, total) {
    var p = total > 0 ? Math.min(100, (100 * done) / total) : 0;
    bar.max = 100;
    bar.value = p;
    percent.textContent = p.toFixed(0) + " %";
    amount.textContent = human(done) + " of " + human(total);
    var now = Date.now();
    if (first === null) { first = { t: now, done: done }; }
    var elapsed = (now - first.t) / 1000;
    if (elapsed > 0.5 && done > first.done) {
      var r = (done - first.done) / elapsed;
      rate.textContent = human(r) + "/s";
      eta.textContent = "about " + seconds((total - done) / r) + " left";
    }
  }

  // The run shown; a `finished` of another request (a refusal while this
  // one runs) leaves it alone.
  var current = null;
  function follows(e) {
    if (current === null) { current = e.run; first = null; }
    return e.run === current;
  }

  var source = new EventSource("/events");
  source.onmessage = function (m) {
    var e;
    try { e = JSON.parse(m.data); } catch (_) { return; }
    switch (e.event) {
      case "phase":
        if (!follows(e)) { return; }
        show(true);
        phase.textContent = phases[e.phase] || e.phase;
        break;
      case "started":
        current = e.run;
        first = null;
        trigger = e.trigger;
        show(true);
        title.textContent = "Backup " + String(e.number).padStart(4, "0") + " is running (" + e.trigger + ")";
        rate.textContent = "";
        eta.textContent = "";
        file.textContent = "";
        progress(0, e.total_bytes);
        break;
      case "file":
        if (!follows(e)) { return; }
        show(true);
        progress(e.bytes_done, e.bytes_total);
        file.textContent = e.path;
        break;
      case "finished":
        if (current !== null && e.run !== current) { return; }
        // The thermometer stays, at its end, until the next run.
        if (current !== null) { ended(e); }
        current = null;
        first = null;
        replace("last-backup", "/parts/last");
        replace("alerts", "/parts/alerts");
        break;
      default:
        break;
    }
  };
  // The stream dropped (the server restarted): the page shows what is true.
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) { window.location.reload(); }
  };
})();
