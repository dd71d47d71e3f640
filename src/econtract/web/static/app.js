/* econtract web UI: small progressive enhancements; every form also works without JS. */
(function () {
  "use strict";

  function pad(n) { return String(n).padStart(2, "0"); }

  function offsetLabel(minutes) {
    var sign = minutes >= 0 ? "+" : "-";
    var m = Math.abs(minutes);
    return "UTC" + sign + pad(Math.floor(m / 60)) + ":" + pad(m % 60);
  }

  /* The sign deadline is typed in the browser's local time; the server needs its UTC offset
     for that date (daylight saving time may differ from today's), sent as minutes east of UTC.
     Without JS the server assumes UTC+08:00, which the hint shows. */
  function setupDeadline() {
    var input = document.getElementById("sign-deadline");
    var tz = document.getElementById("tz-offset");
    var label = document.getElementById("tz-label");
    if (!input || !tz) { return; }
    function update() {
      var when = input.value ? new Date(input.value) : new Date();
      if (isNaN(when.getTime())) { when = new Date(); }
      var offset = -when.getTimezoneOffset();
      tz.value = String(offset);
      if (label) { label.textContent = offsetLabel(offset); }
    }
    input.addEventListener("change", update);
    if (input.form) { input.form.addEventListener("submit", update); }
    update();
  }

  /* "Add signer" clones the last row; without JS the form simply has three rows. */
  function setupSigners() {
    var button = document.getElementById("add-signer");
    var rows = document.getElementById("signer-rows");
    if (!button || !rows || !rows.lastElementChild) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var row = rows.lastElementChild.cloneNode(true);
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      var order = row.querySelector('input[name="signer_order"]');
      if (order) { order.value = String(rows.children.length + 1); }
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupDeadline();
    setupSigners();
  });
})();
