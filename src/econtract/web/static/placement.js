/* Placement editor: drag each signer's field onto a page, move it, resize it (corner handle),
   with mouse, pen or touch (Pointer Events; touch-action: none on everything draggable), or with
   the keyboard (arrows move, Shift+arrows resize, 1 pt per step, 10 with Alt).
   State is kept in PDF points per signer: {page, rect: [x1, y1, x2, y2]} from the page's bottom
   left, exactly what PUT /api/v1/contracts/{id}/fields takes; screen pixels are derived from each
   page's visible area (data-box) and the image's rendered width, so zooming or resizing the
   window never changes a stored rectangle. The server checks everything again. */
(function () {
  "use strict";

  var root = document.getElementById("placement");
  if (!root) { return; }
  var editable = root.dataset.editable === "true";
  var minSize = root.dataset.min.split(",").map(Number);
  var maxSize = root.dataset.max.split(",").map(Number);
  var defSize = root.dataset.default.split(",").map(Number);
  var status = document.getElementById("placement-status");
  var state = {};   // signer id → {page, rect} or null
  var boxes = {};   // signer id → element
  var rows = {};    // signer id → sidebar row

  function pages() {
    return Array.prototype.filter.call(root.querySelectorAll(".pl-page"),
      function (p) { return p.dataset.box; });
  }
  function pageEl(n) { return root.querySelector('.pl-page[data-page="' + n + '"]'); }
  function area(page) { return page.dataset.box.split(",").map(Number); }
  function sheet(page) { return page.querySelector(".pl-sheet"); }
  /* pixels per point of a page as shown now */
  function scale(page) {
    var a = area(page);
    return sheet(page).getBoundingClientRect().width / (a[2] - a[0]);
  }
  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
  function say(text) { if (status) { status.textContent = text; } }

  /* Fit a rectangle (points) into the page's area and the size limits. */
  function fit(page, rect) {
    var a = area(page);
    var w = clamp(rect[2] - rect[0], minSize[0], Math.min(maxSize[0], a[2] - a[0]));
    var h = clamp(rect[3] - rect[1], minSize[1], Math.min(maxSize[1], a[3] - a[1]));
    var x1 = clamp(Math.round(rect[0]), a[0], a[2] - w);
    var y1 = clamp(Math.round(rect[1]), a[1], a[3] - h);
    return [x1, y1, Math.round(x1 + w), Math.round(y1 + h)];
  }

  function whereText(id) {
    var s = state[id];
    return s ? root.dataset.msgPage.replace("{n}", s.page) : root.dataset.msgSignaturePage;
  }

  function makeBox(id) {
    var row = rows[id];
    var box = document.createElement("div");
    box.className = "pl-box pl-c" + ((Number(row.dataset.number) - 1) % 6);
    box.dataset.signer = id;
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", row.dataset.number + " · " + row.dataset.name);
    var label = document.createElement("span");
    label.className = "pl-label";
    label.textContent = row.dataset.number + " · " + row.dataset.name;
    box.appendChild(label);
    if (editable) {
      box.tabIndex = 0;
      var handle = document.createElement("span");
      handle.className = "pl-handle";
      box.appendChild(handle);
      box.addEventListener("pointerdown", function (ev) { startDrag(ev, id, box); });
      handle.addEventListener("pointerdown", function (ev) { startResize(ev, id, box); });
      box.addEventListener("keydown", function (ev) { keyMove(ev, id); });
    }
    return box;
  }

  /* Put a signer's box where its state says (or remove it). */
  function draw(id) {
    var s = state[id];
    var box = boxes[id];
    if (!s) {
      if (box) { box.remove(); delete boxes[id]; }
    } else {
      var page = pageEl(s.page);
      if (!box) { box = boxes[id] = makeBox(id); }
      if (box.parentNode !== sheet(page)) { sheet(page).appendChild(box); }
      var a = area(page), k = scale(page);
      box.style.position = "absolute";
      box.style.left = (s.rect[0] - a[0]) * k + "px";
      box.style.top = (a[3] - s.rect[3]) * k + "px";
      box.style.width = (s.rect[2] - s.rect[0]) * k + "px";
      box.style.height = (s.rect[3] - s.rect[1]) * k + "px";
      box.dataset.page = s.page;
      box.dataset.rect = s.rect.join(",");
    }
    rows[id].querySelector(".ps-where").textContent = whereText(id);
    rows[id].classList.toggle("ps-placed", !!s);
  }
  function drawAll() { Object.keys(rows).forEach(draw); }

  function changed() { say(root.dataset.msgUnsaved); }

  /* The page (with an area) under a screen point, or null. */
  function pageAt(x, y) {
    var found = null;
    pages().forEach(function (p) {
      var r = sheet(p).getBoundingClientRect();
      if (x >= r.left && x <= r.right && y >= r.top && y <= r.bottom) { found = p; }
    });
    return found;
  }

  /* Drop a box whose top-left corner is at screen (left, top), size in points. */
  function drop(id, page, left, top, w, h) {
    var a = area(page), k = scale(page), r = sheet(page).getBoundingClientRect();
    var x1 = a[0] + (left - r.left) / k;
    var y2 = a[3] - (top - r.top) / k;
    state[id] = {page: Number(page.dataset.page), rect: fit(page, [x1, y2 - h, x1 + w, y2])};
    draw(id);
    changed();
  }
  function currentScale() { var p = pages()[0]; return p ? scale(p) : 1; }

  /* Dragging (from the sidebar chip or a placed box): the box floats (position: fixed) under
     the pointer, then lands on the page under its centre. */
  function startDrag(ev, id, box, fresh) {
    if (ev.button !== undefined && ev.button > 0) { return; }
    if (ev.target.classList && ev.target.classList.contains("pl-handle")) { return; }
    ev.preventDefault();
    var k = currentScale();
    var s = state[id];
    var w = s ? s.rect[2] - s.rect[0] : defSize[0];
    var h = s ? s.rect[3] - s.rect[1] : defSize[1];
    if (!box) { box = boxes[id] = makeBox(id); }
    var r = box.parentNode ? box.getBoundingClientRect() : null;
    var dx = r && !fresh ? ev.clientX - r.left : w * k / 2;
    var dy = r && !fresh ? ev.clientY - r.top : h * k / 2;
    document.body.appendChild(box);
    box.classList.add("pl-dragging");
    box.style.position = "fixed";
    box.style.width = w * k + "px";
    box.style.height = h * k + "px";
    function at(e) {
      box.style.left = e.clientX - dx + "px";
      box.style.top = e.clientY - dy + "px";
    }
    at(ev);
    function move(e) { e.preventDefault(); at(e); }
    function up(e) {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      document.removeEventListener("pointercancel", up);
      box.classList.remove("pl-dragging");
      var left = e.clientX - dx, top = e.clientY - dy;
      var page = pageAt(left + w * k / 2, top + h * k / 2);
      if (!page) {
        box.remove();
        delete boxes[id];
        draw(id);  /* back where it was, or nowhere */
        return;
      }
      drop(id, page, left, top, w, h);
      box.focus({preventScroll: true});
    }
    document.addEventListener("pointermove", move, {passive: false});
    document.addEventListener("pointerup", up);
    document.addEventListener("pointercancel", up);
  }

  function startResize(ev, id, box) {
    if (ev.button !== undefined && ev.button > 0) { return; }
    ev.preventDefault();
    ev.stopPropagation();
    var s = state[id], page = pageEl(s.page), k = scale(page);
    var x0 = ev.clientX, y0 = ev.clientY, start = s.rect.slice();
    function move(e) {
      e.preventDefault();
      var w = start[2] - start[0] + (e.clientX - x0) / k;
      var h = start[3] - start[1] + (e.clientY - y0) / k;
      w = clamp(w, minSize[0], maxSize[0]);
      h = clamp(h, minSize[1], maxSize[1]);
      /* the top-left corner stays; the box grows right and down */
      state[id] = {page: s.page, rect: fit(page, [start[0], start[3] - h, start[0] + w, start[3]])};
      draw(id);
    }
    function up() {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      document.removeEventListener("pointercancel", up);
      changed();
    }
    document.addEventListener("pointermove", move, {passive: false});
    document.addEventListener("pointerup", up);
    document.addEventListener("pointercancel", up);
  }

  function keyMove(ev, id) {
    var s = state[id];
    var step = ev.altKey ? 10 : 1;
    var d = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step],
             ArrowDown: [0, -step]}[ev.key];
    if (!s || !d) { return; }
    ev.preventDefault();
    var r = s.rect.slice();
    if (ev.shiftKey) { r[2] += d[0]; r[1] -= d[1]; } else {
      r = [r[0] + d[0], r[1] + d[1], r[2] + d[0], r[3] + d[1]];
    }
    state[id] = {page: s.page, rect: fit(pageEl(s.page), r)};
    draw(id);
    changed();
  }

  /* "Place": a default-size box in the middle of the first page in view. */
  function placeDefault(id) {
    var list = pages();
    if (!list.length) { return; }
    var target = list[0];
    list.forEach(function (p) {
      var r = p.getBoundingClientRect();
      if (r.top < window.innerHeight / 2 && r.bottom > 0) { target = p; }
    });
    var a = area(target);
    var cx = (a[0] + a[2]) / 2, cy = (a[1] + a[3]) / 2;
    state[id] = {page: Number(target.dataset.page), rect: fit(target, [
      cx - defSize[0] / 2, cy - defSize[1] / 2, cx + defSize[0] / 2, cy + defSize[1] / 2])};
    draw(id);
    boxes[id].focus();
    changed();
  }

  function save() {
    var body = {placements: Object.keys(rows).map(function (id) {
      var s = state[id];
      return s ? {signer_id: id, page: s.page, rect: s.rect} : {signer_id: id, clear: true};
    })};
    var button = document.getElementById("placement-save");
    button.disabled = true;
    fetch("/api/v1/contracts/" + root.dataset.contract + "/fields", {
      method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return {ok: response.ok, data: data}; });
    }).then(function (result) {
      if (!result.ok) {
        say(root.dataset.msgError + " " + (result.data.detail || result.data.title || ""));
        return;
      }
      result.data.fields.forEach(function (f) {
        if (rows[f.signer_id]) {
          state[f.signer_id] = f.page ? {page: f.page, rect: f.rect} : null;
        }
      });
      drawAll();
      root.dataset.saved = String(Number(root.dataset.saved || 0) + 1);
      say(root.dataset.msgSaved);
    }).catch(function () {
      say(root.dataset.msgError);
    }).then(function () { button.disabled = false; });
  }

  Array.prototype.forEach.call(root.querySelectorAll(".ps-row"), function (row) {
    var id = row.dataset.signer;
    rows[id] = row;
    state[id] = row.dataset.page ? {page: Number(row.dataset.page),
                                    rect: row.dataset.rect.split(",").map(Number)} : null;
    if (!editable) { return; }
    var chip = row.querySelector(".ps-chip");
    chip.classList.add("ps-draggable");
    chip.addEventListener("pointerdown", function (ev) { startDrag(ev, id, boxes[id], true); });
    row.querySelector(".ps-place").addEventListener("click", function () { placeDefault(id); });
    row.querySelector(".ps-clear").addEventListener("click", function () {
      state[id] = null;
      draw(id);
      changed();
    });
  });
  var saveButton = document.getElementById("placement-save");
  if (saveButton) { saveButton.addEventListener("click", save); }

  /* Boxes are laid out in pixels: again whenever an image loads or the window changes. */
  Array.prototype.forEach.call(root.querySelectorAll(".pl-sheet img"), function (img) {
    if (!img.complete) { img.addEventListener("load", drawAll); }
  });
  window.addEventListener("resize", drawAll);
  drawAll();
  root.dataset.ready = "true";
}());
