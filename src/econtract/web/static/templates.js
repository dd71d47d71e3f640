/* Template pages: add and remove variable rows in the editor, and show amounts in Chinese
   capitals while they are typed. Progressive enhancement: without JS the editor has blank rows
   and the server shows the capitals after a preview. */
(function () {
  "use strict";

  /* "Add variable" clones the last row with a fresh key (the key ties the required checkbox to
     its row, since unchecked boxes are not sent); "×" removes a row, keeping at least one. */
  function setupVariables() {
    var rows = document.getElementById("var-rows");
    var add = document.getElementById("add-variable");
    if (!rows || !add || !rows.lastElementChild) { return; }
    function nextKey() {
      var keys = Array.prototype.map.call(rows.querySelectorAll('input[name="var_key"]'),
        function (input) { return parseInt(input.value, 10) || 0; });
      return String(Math.max.apply(null, keys.concat([0])) + 1);
    }
    function wire(row) {
      var remove = row.querySelector(".var-remove");
      if (!remove) { return; }
      remove.hidden = false;
      remove.addEventListener("click", function () {
        if (rows.children.length > 1) { row.remove(); } else { clear(row); }
      });
    }
    function clear(row) {
      row.querySelectorAll('input[type="text"]').forEach(function (input) { input.value = ""; });
      var type = row.querySelector("select");
      if (type) { type.selectedIndex = 0; }
    }
    Array.prototype.forEach.call(rows.children, wire);
    add.hidden = false;
    add.addEventListener("click", function () {
      var row = rows.lastElementChild.cloneNode(true);
      clear(row);
      var key = nextKey();
      row.querySelector('input[name="var_key"]').value = key;
      var required = row.querySelector('input[name="var_required"]');
      required.value = key;
      required.checked = true;
      rows.appendChild(row);
      wire(row);
      row.querySelector('input[name="var_name"]').focus();
    });
  }

  /* Amounts in Chinese financial capitals (大写金额), the same rules as the server's
     templates.variables.money_in_capitals: 1004.50 → 人民币壹仟零肆元伍角整. */
  var DIGITS = "零壹贰叁肆伍陆柒捌玖";
  var UNITS = ["", "拾", "佰", "仟"];
  var SECTIONS = ["", "万", "亿"];

  function sectionCapitals(n) {
    var digits = String(n).padStart(4, "0"), out = "", zero = false, started = false;
    for (var i = 0; i < 4; i++) {
      var d = +digits[i];
      if (d === 0) { zero = started; continue; }
      if (zero) { out += "零"; zero = false; }
      out += DIGITS[d] + UNITS[3 - i];
      started = true;
    }
    return out;
  }

  function integerCapitals(n) {
    var sections = [], parts = [], zeroPending = false;
    while (n > 0) { sections.push(n % 10000); n = Math.floor(n / 10000); }
    for (var i = sections.length - 1; i >= 0; i--) {
      var s = sections[i];
      if (s === 0) { zeroPending = parts.length > 0; continue; }
      if (parts.length && (zeroPending || s < 1000)) { parts.push("零"); }
      parts.push(sectionCapitals(s) + SECTIONS[i]);
      zeroPending = false;
    }
    return parts.join("");
  }

  function moneyCapitals(text) {
    var t = text.trim().replace(/[,，]/g, "").replace(/^[¥￥]/, "").trim();
    var m = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(t);
    if (!m) { return ""; }
    var yuan = parseInt(m[1], 10), fraction = (m[2] || "").padEnd(2, "0");
    var jiao = +fraction[0], fen = +fraction[1];
    var out = yuan ? "人民币" + integerCapitals(yuan) + "元" : "";
    if (!jiao && !fen) { return (out || "人民币零元") + "整"; }
    if (!out) { out = "人民币"; }
    if (jiao) { out += DIGITS[jiao] + "角"; } else if (yuan) { out += "零"; }
    return out + (fen ? DIGITS[fen] + "分" : "整");
  }

  function setupCapitals() {
    document.querySelectorAll("input[data-capitals]").forEach(function (input) {
      var target = document.getElementById(input.getAttribute("data-capitals"));
      if (!target) { return; }
      function update() { target.textContent = moneyCapitals(input.value); }
      input.addEventListener("input", update);
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupVariables();
    setupCapitals();
  });
})();
