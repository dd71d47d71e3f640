// Bulk send (批量发送): the sample-CSV link follows the chosen template; the progress page polls
// GET /api/v1/bulk/{id} with the session cookie and reloads once the run is done.
(function () {
  "use strict";

  function sampleLink() {
    var select = document.getElementById("bulk-template");
    var link = document.getElementById("bulk-sample");
    if (!select || !link) return;
    select.addEventListener("change", function () {
      link.href = "/bulk/sample.csv?template_id=" + encodeURIComponent(select.value);
      link.hidden = !select.value;
    });
  }

  function progress() {
    var box = document.getElementById("bulk-progress");
    if (!box || box.dataset.status === "done") return;
    var url = "/api/v1/bulk/" + encodeURIComponent(box.dataset.runId) + "?items=false";
    function set(id, value) {
      var el = document.getElementById(id);
      if (el) el.textContent = String(value);
    }
    function poll() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (run) {
          if (!run) { window.setTimeout(poll, 5000); return; }
          var bar = document.getElementById("bulk-bar");
          if (bar) bar.value = run.sent + run.failed;
          set("bulk-sent", run.sent);
          set("bulk-failed", run.failed);
          set("bulk-pending", run.pending);
          if (run.status === "done") { window.location.reload(); return; }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    sampleLink();
    progress();
  });
})();
