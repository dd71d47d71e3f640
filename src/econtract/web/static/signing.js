/* econtract signing page (/s): walks a signer through the signer JSON API.

   The server renders the contract (escaped by Jinja); everything this script writes into the
   page goes through textContent or element properties, never innerHTML. The CSP forbids inline
   scripts, so the translated messages come in a JSON data block (#signing-messages). */
(function () {
  "use strict";

  var API = "/api/v1/signer";
  var MAX_PNG_BYTES = 2 * 1024 * 1024;
  var MAX_FILE_BYTES = 15 * 1024 * 1024;
  var ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2];
  var root, M = {}, csrf = "";

  function $(id) { return document.getElementById(id); }

  /* A translated message with %(name)s placeholders filled in. */
  function t(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(M, key) ? M[key] : key;
    Object.keys(vars || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(String(vars[name]));
    });
    return text;
  }

  function show(el, on) { if (el) { el.hidden = !on; } }

  /* The API's problem+json as one readable line: our translation of its code when we have
     one, else the server's message; the stable code is always shown. */
  function problemText(data) {
    var code = (data && data.code) || "internal_error";
    var vars = { seconds: data && data.retry_after, left: data && data.attempts_left };
    var known = Object.prototype.hasOwnProperty.call(M, code) &&
      (M[code].indexOf("%(seconds)s") < 0 || vars.seconds !== undefined) &&
      (M[code].indexOf("%(left)s") < 0 || vars.left !== undefined);
    var text = known ? t(code, vars) : ((data && data.detail) || code);
    return { text: text, code: code };
  }

  function showError(box, problem) {
    if (!box) { return; }
    box.textContent = "";
    var line = document.createElement("p");
    line.textContent = problem.text;
    box.appendChild(line);
    if (problem.code) {
      var code = document.createElement("p");
      code.className = "error-code";
      code.textContent = t("error_code") + ": " + problem.code;
      box.appendChild(code);
    }
    box.hidden = false;
    box.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function localError(box, key) { showError(box, { text: t(key), code: "" }); }

  function call(method, path, body) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(API + path, {
      method: method, credentials: "same-origin", headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { code: "network_error" } };
    });
  }

  function busyButton(button, on) {
    if (button) { button.disabled = on; button.classList.toggle("is-busy", on); }
  }

  function markStep(name) {
    var steps = document.querySelectorAll(".sign-steps li");
    var reached = false;
    steps.forEach(function (li) {
      var here = li.getAttribute("data-step") === name;
      li.classList.toggle("current", here);
      li.classList.toggle("done", !reached && !here);
      if (here) { reached = true; }
    });
  }

  /* --- access code ----------------------------------------------------------------------- */

  function setupAccessCode() {
    var form = $("access-form");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = $("access-code");
      var button = form.querySelector("button");
      if (!input.value.trim()) { localError($("access-error"), "need_access_code"); input.focus(); return; }
      busyButton(button, true);
      call("POST", "/access-code", { code: input.value.trim() }).then(function (answer) {
        busyButton(button, false);
        if (answer.ok) { window.location.reload(); return; }
        showError($("access-error"), problemText(answer.data));
      });
    });
  }

  /* --- identity: the e-mail code --------------------------------------------------------- */

  function setupIdentity(onVerified) {
    var send = $("send-code"), form = $("code-form");
    if (!send || !form) { return; }
    var timer = null;

    function countdown(until) {
      if (timer) { window.clearInterval(timer); }
      function tick() {
        var left = Math.ceil((until - Date.now()) / 1000);
        if (left <= 0) {
          window.clearInterval(timer);
          send.disabled = false;
          send.textContent = t("resend_code");
          return;
        }
        send.disabled = true;
        send.textContent = t("resend_in", { seconds: left });
      }
      timer = window.setInterval(tick, 1000);
      tick();
    }

    send.addEventListener("click", function () {
      busyButton(send, true);
      $("identity-error").hidden = true;
      call("POST", "/otp").then(function (answer) {
        busyButton(send, false);
        if (!answer.ok) {
          showError($("identity-error"), problemText(answer.data));
          if (answer.data.retry_after) { countdown(Date.now() + answer.data.retry_after * 1000); }
          return;
        }
        var status = $("code-status");
        var until = new Date(answer.data.expires_at);
        status.textContent = t("code_sent", {
          to: answer.data.sent_to,
          until: until.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
        });
        status.hidden = false;
        countdown(new Date(answer.data.resend_after).getTime());
        $("otp-code").focus();
      });
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = $("otp-code");
      var code = input.value.replace(/\s+/g, "");
      if (!/^\d{6}$/.test(code)) { localError($("identity-error"), "need_code"); input.focus(); return; }
      var button = $("verify-code");
      busyButton(button, true);
      call("POST", "/otp/verify", { code: code }).then(function (answer) {
        busyButton(button, false);
        if (!answer.ok) {
          showError($("identity-error"), problemText(answer.data));
          input.select();
          return;
        }
        if (timer) { window.clearInterval(timer); }
        $("identity-error").hidden = true;
        show($("identity-pending"), false);
        show($("identity-done"), true);
        onVerified();
      });
    });
  }

  /* --- reading: page images, navigation, zoom --------------------------------------------- */

  function Viewer(count, version) {
    this.count = count;
    this.version = version;
    this.zoom = 1;
    this.viewer = $("doc-viewer");
    this.pages = $("doc-pages");
    this.figures = [];
    this.current = 1;
    this.settling = 0;
  }

  Viewer.prototype.pixelWidth = function () {
    var css = this.viewer.clientWidth * this.zoom;
    var wanted = Math.ceil(css * (window.devicePixelRatio || 1) / 200) * 200;
    return Math.max(400, Math.min(1600, wanted || 800));
  };

  Viewer.prototype.source = function (n, width) {
    return API + "/pages/" + n + "?width=" + width + "&v=" + encodeURIComponent(this.version);
  };

  Viewer.prototype.build = function () {
    var self = this;
    var width = this.pixelWidth();
    for (var n = 1; n <= this.count; n += 1) {
      var figure = document.createElement("figure");
      figure.className = "doc-page is-loading";
      figure.setAttribute("data-page", String(n));
      var img = document.createElement("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = t("page_alt", { n: n });
      img.setAttribute("data-width", String(width));
      img.addEventListener("load", function () { this.parentNode.classList.remove("is-loading"); });
      img.addEventListener("error", function () {
        var fig = this.parentNode;
        fig.classList.remove("is-loading");
        fig.classList.add("is-failed");
        fig.setAttribute("data-error", t("page_failed", { n: fig.getAttribute("data-page") }));
      });
      img.src = this.source(n, width);
      var caption = document.createElement("figcaption");
      caption.textContent = String(n) + " / " + String(this.count);
      figure.appendChild(img);
      figure.appendChild(caption);
      this.pages.appendChild(figure);
      this.figures.push(figure);
    }
    this.viewer.addEventListener("scroll", function () { self.track(); }, { passive: true });
    $("page-prev").addEventListener("click", function () { self.go(self.current - 1); });
    $("page-next").addEventListener("click", function () { self.go(self.current + 1); });
    $("zoom-in").addEventListener("click", function () { self.setZoom(1); });
    $("zoom-out").addEventListener("click", function () { self.setZoom(-1); });
    this.viewer.addEventListener("keydown", function (event) {
      if (event.key === "PageDown" || event.key === "ArrowRight") { event.preventDefault(); self.go(self.current + 1); }
      if (event.key === "PageUp" || event.key === "ArrowLeft") { event.preventDefault(); self.go(self.current - 1); }
    });
    this.update();
  };

  Viewer.prototype.go = function (n) {
    if (n < 1 || n > this.count) { return; }
    var figure = this.figures[n - 1];
    // While the smooth scroll runs, its scroll events must not move the counter back.
    this.settling = Date.now() + 700;
    this.viewer.scrollTo({ top: figure.offsetTop - this.pages.offsetTop, behavior: "smooth" });
    this.current = n;
    this.update();
  };

  Viewer.prototype.track = function () {
    if (this.settling && Date.now() < this.settling) { return; }
    var v = this.viewer;
    if (v.scrollTop > 0 && v.scrollTop + v.clientHeight >= v.scrollHeight - 2) {
      if (this.current !== this.count) { this.current = this.count; this.update(); }
      return;  // the last page may be too short to reach the top of the viewer
    }
    var top = this.viewer.scrollTop + this.viewer.clientHeight / 3;
    var base = this.pages.offsetTop;
    for (var i = this.figures.length - 1; i >= 0; i -= 1) {
      if (this.figures[i].offsetTop - base <= top) {
        if (this.current !== i + 1) { this.current = i + 1; this.update(); }
        return;
      }
    }
  };

  Viewer.prototype.update = function () {
    $("page-pos").textContent = t("page_of", { n: this.current, total: this.count });
    $("page-prev").disabled = this.current <= 1;
    $("page-next").disabled = this.current >= this.count;
    $("zoom-level").textContent = Math.round(this.zoom * 100) + "%";
    $("zoom-out").disabled = this.zoom <= ZOOMS[0];
    $("zoom-in").disabled = this.zoom >= ZOOMS[ZOOMS.length - 1];
  };

  Viewer.prototype.setZoom = function (step) {
    var index = ZOOMS.indexOf(this.zoom) + step;
    if (index < 0 || index >= ZOOMS.length) { return; }
    var page = this.current;
    this.zoom = ZOOMS[index];
    this.pages.style.width = (this.zoom * 100) + "%";
    var width = this.pixelWidth();
    var self = this;
    this.figures.forEach(function (figure, i) {
      var img = figure.querySelector("img");
      if (Number(img.getAttribute("data-width")) < width) {  // sharper pages, never blurrier
        img.setAttribute("data-width", String(width));
        img.src = self.source(i + 1, width);
      }
    });
    this.update();
    this.go(page);
  };

  /* --- the signature: draw, type, upload, seal ------------------------------------------- */

  function SignaturePad(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.strokes = 0;
    this.drawing = false;
    this.pointer = null;
    this.last = null;
    var self = this;
    canvas.addEventListener("pointerdown", function (e) { self.down(e); });
    canvas.addEventListener("pointermove", function (e) { self.move(e); });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function (e) { self.up(e); });
    });
    window.addEventListener("resize", function () { self.resize(); });
    this.resize();
  }

  SignaturePad.prototype.resize = function () {
    var ratio = Math.max(window.devicePixelRatio || 1, 1);
    var width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    if (!width || !height) { return; }
    if (this.canvas.width === Math.round(width * ratio)) { return; }
    var keep = this.strokes ? this.canvas.toDataURL("image/png") : null;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.ctx.lineCap = "round";
    this.ctx.lineJoin = "round";
    this.ctx.strokeStyle = "#0b2a8a";
    if (keep) {
      var img = new Image(), ctx = this.ctx;
      img.onload = function () { ctx.drawImage(img, 0, 0, width, height); };
      img.src = keep;
    }
  };

  SignaturePad.prototype.point = function (e) {
    var box = this.canvas.getBoundingClientRect();
    return { x: e.clientX - box.left, y: e.clientY - box.top,
             w: e.pointerType === "mouse" ? 2.6 : 2.2 + 2 * (e.pressure || 0.5) };
  };

  SignaturePad.prototype.down = function (e) {
    if (this.drawing || (e.pointerType === "mouse" && e.button !== 0)) { return; }
    e.preventDefault();
    this.resize();
    this.drawing = true;
    this.pointer = e.pointerId;
    if (this.canvas.setPointerCapture) {
      try { this.canvas.setPointerCapture(e.pointerId); } catch (ignored) { /* synthetic */ }
    }
    this.last = this.point(e);
    this.ctx.beginPath();
    this.ctx.fillStyle = this.ctx.strokeStyle;
    this.ctx.arc(this.last.x, this.last.y, this.last.w / 2, 0, Math.PI * 2);
    this.ctx.fill();
    this.strokes += 1;
    this.canvas.classList.add("has-ink");
  };

  SignaturePad.prototype.move = function (e) {
    if (!this.drawing || e.pointerId !== this.pointer) { return; }
    e.preventDefault();
    var events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    if (!events.length) { events = [e]; }
    var ctx = this.ctx, self = this;
    events.forEach(function (ev) {
      var p = self.point(ev);
      ctx.beginPath();
      ctx.lineWidth = (p.w + self.last.w) / 2;
      ctx.moveTo(self.last.x, self.last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      self.last = p;
    });
  };

  SignaturePad.prototype.up = function (e) {
    if (e.pointerId !== this.pointer) { return; }
    this.drawing = false;
    this.pointer = null;
  };

  SignaturePad.prototype.clear = function () {
    this.ctx.save();
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.ctx.restore();
    this.strokes = 0;
    this.canvas.classList.remove("has-ink");
  };

  SignaturePad.prototype.png = function () {
    return this.strokes ? this.canvas.toDataURL("image/png") : null;
  };

  /* An uploaded PNG or JPEG, redrawn as a PNG (no metadata, bounded size) on a canvas. */
  function imageToPng(file, maxWidth, maxHeight) {
    return new Promise(function (resolve, reject) {
      if (!file || ["image/png", "image/jpeg"].indexOf(file.type) < 0) { reject("image_type"); return; }
      if (file.size > MAX_FILE_BYTES) { reject("image_too_large"); return; }
      var url = URL.createObjectURL(file);
      var img = new Image();
      img.onload = function () {
        URL.revokeObjectURL(url);
        var scale = Math.min(1, maxWidth / img.naturalWidth, maxHeight / img.naturalHeight);
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
        canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        var data = canvas.toDataURL("image/png");
        if (pngBytes(data) > MAX_PNG_BYTES) { reject("image_too_large"); return; }
        resolve(data);
      };
      img.onerror = function () { URL.revokeObjectURL(url); reject("image_unreadable"); };
      img.src = url;
    });
  }

  function pngBytes(dataUrl) {
    var b64 = dataUrl.slice(dataUrl.indexOf(",") + 1);
    return Math.floor(b64.length * 3 / 4);
  }

  function Appearance() {
    this.mode = "drawn";
    this.uploaded = null;
    this.seal = null;
    this.pad = new SignaturePad($("sig-canvas"));
    var self = this;
    $("sig-clear").addEventListener("click", function () { self.pad.clear(); });
    document.querySelectorAll(".sig-tab").forEach(function (tab) {
      tab.addEventListener("click", function () { self.select(tab); });
      tab.addEventListener("keydown", function (e) { self.arrows(e, tab); });
    });
    var text = $("sig-text"), preview = $("sig-typed-preview");
    function typed() { preview.textContent = text.value.trim(); }
    text.addEventListener("input", typed);
    typed();
    $("sig-file").addEventListener("change", function () {
      self.load(this, 1200, 600, function (data) {
        self.uploaded = data;
        $("sig-upload-preview").src = data;
        show($("sig-upload-preview"), true);
      });
    });
    $("seal-file").addEventListener("change", function () {
      self.load(this, 800, 800, function (data) {
        self.seal = data;
        $("seal-preview").src = data;
        show($("seal-row"), true);
      });
    });
    $("seal-remove").addEventListener("click", function () {
      self.seal = null;
      $("seal-file").value = "";
      show($("seal-row"), false);
    });
  }

  Appearance.prototype.load = function (input, width, height, done) {
    var box = $("appearance-error");
    box.hidden = true;
    imageToPng(input.files && input.files[0], width, height).then(done, function (key) {
      input.value = "";
      localError(box, key);
    });
  };

  Appearance.prototype.select = function (tab) {
    document.querySelectorAll(".sig-tab").forEach(function (other) {
      var on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      show($(other.getAttribute("aria-controls")), on);
    });
    this.mode = tab.getAttribute("data-mode");
    $("appearance-error").hidden = true;
    if (this.mode === "drawn") { this.pad.resize(); }
  };

  Appearance.prototype.arrows = function (e, tab) {
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") { return; }
    var tabs = Array.prototype.slice.call(document.querySelectorAll(".sig-tab"));
    var next = tabs[(tabs.indexOf(tab) + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    this.select(next);
  };

  /* The appearance for POST /sign, or the key of what is missing. */
  Appearance.prototype.value = function () {
    var out;
    if (this.mode === "drawn") {
      var png = this.pad.png();
      if (!png) { return { missing: "need_signature" }; }
      out = { type: "drawn", image_png_base64: png };
    } else if (this.mode === "upload") {
      if (!this.uploaded) { return { missing: "need_upload" }; }
      out = { type: "drawn", image_png_base64: this.uploaded };
    } else {
      var text = $("sig-text").value.trim();
      if (!text) { return { missing: "need_text" }; }
      out = { type: "typed", text: text };
    }
    if (this.seal) { out.seal_png_base64 = this.seal; }
    return { appearance: out };
  };

  /* --- sign and decline ------------------------------------------------------------------ */

  function finish(which, answer) {
    show($("flow"), false);
    show($("busy"), false);
    if (which === "signed") {
      var contract = "status_" + answer.contract_status;
      $("done-status").textContent = t("status_line", {
        mine: t("signer_signed"),
        contract: Object.prototype.hasOwnProperty.call(M, contract) ? t(contract)
          : answer.contract_status
      });
    }
    var screen = $(which === "signed" ? "done-signed" : "done-declined");
    show(screen, true);
    screen.setAttribute("tabindex", "-1");
    screen.focus();
    window.scrollTo(0, 0);
  }

  function setupSign(appearance) {
    var button = $("sign-btn");
    if (!button) { return; }
    var firstKey = button.getAttribute("data-key-set-up") !== "true";
    button.addEventListener("click", function () {
      var box = $("sign-error");
      box.hidden = true;
      $("appearance-error").hidden = true;
      var chosen = appearance.value();
      if (chosen.missing) {
        localError($("appearance-error"), chosen.missing);
        $("step-appearance").scrollIntoView({ behavior: "smooth" });
        return;
      }
      if (!$("consent").checked) { localError(box, "need_consent"); $("consent").focus(); return; }
      var pin = $("pin").value;
      if (!pin) { localError(box, "need_pin"); $("pin").focus(); return; }
      if (firstKey) {
        if (pin.length < 6) { localError(box, "pin_short"); $("pin").focus(); return; }
        if (pin !== $("pin2").value) { localError(box, "pin_mismatch"); $("pin2").focus(); return; }
      }
      busyButton(button, true);
      show($("busy"), true);
      markStep("sign");
      call("POST", "/sign", { pin: pin, consent: true, appearance: chosen.appearance })
        .then(function (answer) {
          busyButton(button, false);
          show($("busy"), false);
          if (answer.ok) { finish("signed", answer.data); return; }
          showError(box, problemText(answer.data));
          if (answer.data.code === "pin_incorrect" || answer.data.code === "weak_pin") {
            $("pin").select();
          }
        });
    });
  }

  function setupDecline() {
    var button = $("decline-btn");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var box = $("decline-error");
      var reason = $("decline-reason").value.trim();
      if (!reason) { localError(box, "reason_required"); $("decline-reason").focus(); return; }
      if (!window.confirm(t("confirm_decline"))) { return; }
      busyButton(button, true);
      call("POST", "/decline", { reason: reason }).then(function (answer) {
        busyButton(button, false);
        if (answer.ok) { finish("declined", answer.data); return; }
        showError(box, problemText(answer.data));
      });
    });
  }

  /* --- start ----------------------------------------------------------------------------- */

  document.addEventListener("DOMContentLoaded", function () {
    root = $("signing");
    if (!root) { return; }
    var data = $("signing-messages");
    try { M = JSON.parse(data ? data.textContent : "{}"); } catch (ignored) { M = {}; }
    csrf = root.getAttribute("data-csrf") || "";
    setupAccessCode();  // asked before anything else: the page then shows nothing more
    if (root.getAttribute("data-your-turn") !== "true") { return; }
    setupDecline();

    var viewer = null, appearance = null;
    function unlock() {
      show($("after-identity"), true);
      markStep("read");
      if (!viewer) {
        viewer = new Viewer(Number(root.getAttribute("data-page-count")) || 0,
                            root.getAttribute("data-document") || "");
        viewer.build();
      }
      if (!appearance) {
        appearance = new Appearance();
        setupSign(appearance);
      }
    }
    setupIdentity(function () {
      unlock();
      $("step-read").scrollIntoView({ behavior: "smooth", block: "start" });
    });
    if (root.getAttribute("data-verified") === "true") { unlock(); }
  });
})();
