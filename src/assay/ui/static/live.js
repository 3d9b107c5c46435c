// Live progress of a running run: poll the JSON every 2 s, update the panel,
// reload the page (with the full report) once the run has ended.
// Text only goes through textContent: nothing from the server becomes markup.
(function () {
  "use strict";
  var panel = document.getElementById("live");
  if (!panel) { return; }
  var url = panel.getAttribute("data-progress");
  var INTERVAL_MS = 2000;

  function set(id, text) {
    var element = document.getElementById(id);
    if (element) { element.textContent = text; }
  }

  function seconds(value) {
    if (value === null || value === undefined) { return ""; }
    if (value < 60) { return value.toFixed(1) + " s"; }
    var minutes = Math.floor(value / 60);
    return minutes + " min " + Math.round(value - 60 * minutes) + " s";
  }

  function show(data) {
    set("live-status", data.status);
    set("live-done", String(data.done));
    set("live-total", data.total ? " of about " + data.total : "");
    set("live-total-source", data.total_source ? "(" + data.total_source + ")" : "");
    var reported = data.source && data.source.indexOf("progress file") >= 0;
    set("live-current", data.current && data.current.length ? data.current.join(", ") : reported ? "none at the moment" : "not reported by the engine");
    set("live-queued", data.queued ? "(" + data.queued + " more sent to workers, waiting for a free one)" : "");
    var last = data.finished && data.finished.length ? data.finished[data.finished.length - 1] : null;
    set("live-last", last ? last.stage + " [" + last.param_set + "] at " + String(last.created).replace("T", " ").replace("Z", " UTC") : "none yet");
    set("live-elapsed", seconds(data.elapsed_s));
    set("live-note", data.done_note || "");
    set("live-log", (data.log_tail || []).join("\n"));
    var bar = document.getElementById("live-bar");
    if (bar && data.total) { bar.max = data.total; bar.value = Math.min(data.done, data.total); }
    panel.setAttribute("data-status", data.status);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        // an error (a run store that cannot be read for now) is not the end of the run:
        // the panel stays and asks again
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.running) { window.setTimeout(poll, INTERVAL_MS); }
        else { window.setTimeout(function () { window.location.reload(); }, 300); }
      })
      .catch(function () { window.setTimeout(poll, INTERVAL_MS * 2); });
  }

  if (panel.getAttribute("data-status") === "running") { window.setTimeout(poll, INTERVAL_MS); }
})();
