/*! Switchboard chat widget. Embed with
 *  <script src="https://switchboard.example/widget.js" data-customer-id="…"
 *          data-customer-hash="…" data-lang="en|zh" data-color="#b4532a" data-title="…" async></script>
 * Plain JavaScript and one web component (<switchboard-chat>, open shadow DOM); no dependencies.
 * Server text is only ever put into the page as text nodes and checked links, never as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || customElements.get("switchboard-chat")) return;
  var cfg = script.dataset;
  var BASE = new URL(script.src, location.href).origin;
  var WS_BASE = BASE.replace(/^http/, "ws");
  var SVG = "http://www.w3.org/2000/svg";

  var STRINGS = {
    en: {
      open: "Chat with us",
      close: "Close chat",
      title: "Customer support",
      placeholder: "Type your message…",
      inputLabel: "Your message",
      send: "Send",
      log: "Conversation",
      suggestions: "Suggestions",
      you: "You",
      bot: "Assistant",
      agent: "Agent",
      system: "Notice",
      typing: "The assistant is typing…",
      sending: "Sending…",
      failed: "Not sent yet, retrying…",
      offline: "Connection lost. Reconnecting…",
      welcome: "Hi! Ask me about an order, a return or a product. You can ask for a person at any time.",
      waiting: "Waiting for a person",
      waitingHint: "A member of our team will join this chat shortly. You can keep writing.",
      position: function (p, m) {
        var mins = m === null ? "" : m <= 1 ? ", about 1 minute" : ", about " + m + " minutes";
        return p <= 1 ? "You are next in line" + mins + "." : "You are number " + p + " in line" + mins + ".";
      },
      withAgent: function (n) { return n ? n + " joined the chat" : "You are chatting with our team"; },
      resolved: "This conversation is resolved.",
      rateQ: "How satisfied are you with this conversation?",
      rateLabel: function (n) { return n + " of 5"; },
      rateLow: "Very unsatisfied",
      rateHigh: "Very satisfied",
      thanks: "Thank you for your rating!",
      error: "Sorry, something went wrong. Please try again.",
      tooLong: "That message is too long.",
      attach: "Attach a photo",
      photo: "Photo",
      photoSending: "Sending photo…",
      notPhoto: "Only photos can be attached: JPEG, PNG, GIF or WebP images.",
      photoTooBig: "That photo is larger than 5 MB. Please choose a smaller one.",
      photoFailed: "The photo could not be sent. Please try again.",
      quick: [
        { label: "Track an order", text: "Where is my order?" },
        { label: "Return policy", text: "What is your return policy?" },
        { label: "Talk to a person", text: "I want to talk to a person" }
      ]
    },
    zh: {
      open: "在线客服",
      close: "关闭聊天",
      title: "在线客服",
      placeholder: "请输入消息…",
      inputLabel: "您的消息",
      send: "发送",
      log: "对话记录",
      suggestions: "快捷问题",
      you: "我",
      bot: "智能客服",
      agent: "客服",
      system: "提示",
      typing: "客服正在输入…",
      sending: "发送中…",
      failed: "尚未送达，正在重试…",
      offline: "连接已断开，正在重新连接…",
      welcome: "您好！订单、退货或商品问题都可以问我，也可以随时转人工客服。",
      waiting: "正在为您转接人工客服",
      waitingHint: "客服人员马上就来，您可以继续留言。",
      position: function (p, m) {
        var mins = m === null ? "" : "，预计等待约 " + Math.max(1, m) + " 分钟";
        return p <= 1 ? "下一位就是您" + mins + "。" : "您前面还有 " + (p - 1) + " 位" + mins + "。";
      },
      withAgent: function (n) { return n ? n + " 已加入对话" : "人工客服正在为您服务"; },
      resolved: "本次对话已结束。",
      rateQ: "您对本次服务满意吗？",
      rateLabel: function (n) { return n + " 分（满分 5 分）"; },
      rateLow: "非常不满意",
      rateHigh: "非常满意",
      thanks: "感谢您的评价！",
      error: "抱歉，出了点问题，请重试。",
      tooLong: "消息太长了。",
      attach: "添加照片",
      photo: "照片",
      photoSending: "照片发送中…",
      notPhoto: "只能发送照片：JPEG、PNG、GIF 或 WebP 格式的图片。",
      photoTooBig: "照片超过 5 MB，请选择小一些的照片。",
      photoFailed: "照片发送失败，请重试。",
      quick: [
        { label: "查询订单", text: "我的订单到哪了？" },
        { label: "退货政策", text: "你们的退货政策是什么？" },
        { label: "转人工客服", text: "我要找人工客服" }
      ]
    }
  };

  function pickLang() {
    var candidates = [cfg.lang, document.documentElement.lang].concat(navigator.languages || [navigator.language]);
    for (var i = 0; i < candidates.length; i++) {
      var l = String(candidates[i] || "").toLowerCase();
      if (l.indexOf("zh") === 0) return "zh";
      if (l.indexOf("en") === 0) return "en";
    }
    return "en";
  }

  var LANG = pickLang();
  var T = STRINGS[LANG];
  var CUSTOMER = cfg.customerId || "";
  var HASH = cfg.customerHash || "";
  var STORE_KEY = "switchboard:" + BASE + ":" + (CUSTOMER || "anonymous");
  // Photos the service accepts (it checks the bytes; this only spares a pointless upload).
  var PHOTO_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
  var MAX_PHOTO = 5 * 1024 * 1024;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE_KEY)) || {}; } catch (e) { return {}; }
  }

  // A colour a shop sets, checked by the browser's own parser, and a text colour readable on it.
  function brandColours(c) {
    if (!c || !CSS.supports("color", c)) c = "#1f5fbf";
    var probe = document.createElement("span");
    probe.style.color = c;
    document.body.appendChild(probe);
    var rgb = getComputedStyle(probe).color.match(/[\d.]+/g) || [31, 95, 191];
    probe.remove();
    var lin = rgb.slice(0, 3).map(function (v) {
      v = v / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var L = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    // White text when it contrasts better than near-black text.
    var onWhite = 1.05 / (L + 0.05), onBlack = (L + 0.05) / 0.05;
    return { bg: c, fg: onWhite >= onBlack ? "#ffffff" : "#111111" };
  }

  var CSS_TEXT = [
    ":host { all: initial; position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', 'Noto Sans CJK SC', 'Noto Sans', sans-serif; color: #1b1f24; }",
    "*, *::before, *::after { box-sizing: border-box; }",
    ".launcher { display: inline-flex; align-items: center; gap: 8px; border: 0; border-radius: 999px; padding: 12px 18px; background: var(--brand); color: var(--on-brand); font: inherit; font-weight: 600; cursor: pointer; box-shadow: 0 6px 20px rgba(0,0,0,.22); }",
    ".launcher svg { width: 20px; height: 20px; fill: currentColor; }",
    ".launcher[aria-expanded='true'] { display: none; }",
    "button:focus-visible, input:focus-visible, textarea:focus-visible, a:focus-visible, [tabindex]:focus-visible { outline: 3px solid #1a73e8; outline-offset: 2px; }",
    ".panel { display: none; flex-direction: column; width: 370px; max-width: calc(100vw - 32px); height: 560px; max-height: calc(100vh - 32px); background: #fff; border-radius: 14px; overflow: hidden; box-shadow: 0 12px 40px rgba(0,0,0,.28); }",
    ".panel.open { display: flex; }",
    "header { display: flex; align-items: center; gap: 8px; padding: 12px 12px 12px 16px; background: var(--brand); color: var(--on-brand); }",
    "header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 700; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }",
    ".close { border: 0; background: transparent; color: inherit; width: 36px; height: 36px; border-radius: 8px; font-size: 22px; line-height: 1; cursor: pointer; }",
    ".close:hover { background: rgba(0,0,0,.12); }",
    ".status { padding: 10px 16px; background: #fff6e0; border-bottom: 1px solid #f0dcb4; font-size: 14px; color: #4a3500; }",
    ".status[hidden] { display: none; }",
    ".status strong { display: block; }",
    ".log { flex: 1; overflow-y: auto; overflow-x: hidden; padding: 14px 12px; background: #f6f7f9; display: flex; flex-direction: column; gap: 8px; }",
    ".msg { max-width: 85%; padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; }",
    ".msg .who { display: block; font-size: 12px; font-weight: 600; color: #4b5563; margin-bottom: 2px; }",
    ".msg.shopper { align-self: flex-end; background: var(--brand); color: var(--on-brand); border-bottom-right-radius: 4px; }",
    ".msg.shopper .who { color: inherit; opacity: .9; }",
    ".msg.bot, .msg.agent { align-self: flex-start; background: #fff; border: 1px solid #e3e6ea; border-bottom-left-radius: 4px; }",
    ".msg.agent { border-color: #b9d3f5; background: #eef5ff; }",
    ".msg.system { align-self: center; background: transparent; color: #4b5563; font-size: 13px; text-align: center; }",
    ".msg a { color: #0b57d0; text-decoration: underline; }",
    ".msg.shopper a { color: inherit; }",
    ".msg .note { display: block; font-size: 12px; opacity: .85; margin-top: 2px; }",
    ".typing { align-self: flex-start; display: inline-flex; gap: 4px; padding: 10px 12px; background: #fff; border: 1px solid #e3e6ea; border-radius: 14px; }",
    ".typing span { width: 7px; height: 7px; border-radius: 50%; background: #6b7280; animation: blink 1.2s infinite; }",
    ".typing span:nth-child(2) { animation-delay: .2s; } .typing span:nth-child(3) { animation-delay: .4s; }",
    "@keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }",
    "@media (prefers-reduced-motion: reduce) { .typing span { animation: none; } }",
    ".quick { display: flex; flex-wrap: wrap; gap: 6px; padding: 8px 12px 0; background: #fff; }",
    ".quick:empty { display: none; }",
    ".quick button { border: 1px solid var(--brand); color: var(--brand-text); background: #fff; border-radius: 999px; padding: 5px 12px; font: inherit; font-size: 14px; cursor: pointer; }",
    ".quick button:hover { background: #f3f4f6; }",
    ".csat { align-self: stretch; background: #fff; border: 1px solid #e3e6ea; border-radius: 12px; padding: 10px 12px; }",
    ".csat p { margin: 0 0 8px; font-weight: 600; }",
    ".csat .scale { display: flex; gap: 6px; }",
    ".csat .scale button { flex: 1; min-width: 0; height: 38px; border: 1px solid #9ca3af; background: #fff; border-radius: 8px; font: inherit; font-weight: 700; cursor: pointer; color: #1b1f24; }",
    ".csat .scale button:hover { border-color: var(--brand); }",
    ".csat .ends { display: flex; justify-content: space-between; font-size: 12px; color: #4b5563; margin-top: 4px; }",
    "form { display: flex; gap: 8px; padding: 10px 12px 12px; background: #fff; border-top: 1px solid #eceef1; }",
    ".sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }",
    "textarea { flex: 1; min-width: 0; resize: none; height: 42px; max-height: 120px; padding: 10px 12px; border: 1px solid #9ca3af; border-radius: 10px; font: inherit; color: inherit; }",
    ".send { border: 0; border-radius: 10px; padding: 0 16px; background: var(--brand); color: var(--on-brand); font: inherit; font-weight: 600; cursor: pointer; }",
    ".send:disabled { opacity: .6; cursor: default; }",
    ".attach { flex: none; width: 42px; border: 1px solid #9ca3af; border-radius: 10px; background: #fff; color: #374151; cursor: pointer; display: inline-flex; align-items: center; justify-content: center; }",
    ".attach[hidden] { display: none; }",
    ".attach svg { width: 20px; height: 20px; fill: currentColor; }",
    ".msg img.photo { display: block; max-width: 100%; max-height: 180px; min-width: 48px; min-height: 36px; margin-top: 4px; border-radius: 8px; background: rgba(255,255,255,.35); }",
    "@media (max-width: 480px) { :host { right: 8px; bottom: 8px; left: auto; } .panel.open { width: calc(100vw - 16px); max-width: none; height: calc(100vh - 16px); max-height: none; } }"
  ].join("\n");

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "on") for (var ev in attrs.on) e.addEventListener(ev, attrs.on[ev]);
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  // Text with its line breaks (kept by `white-space: pre-wrap`) and http(s) links, built as
  // DOM nodes so that nothing the server sends is ever parsed as markup.
  function richText(text) {
    var frag = document.createDocumentFragment();
    var re = /\bhttps?:\/\/[^\s<>"'）)]+[^\s<>"'）).,;:!?，。！？]/g;
    var last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = document.createElement("a");
      a.textContent = m[0];
      try {
        var u = new URL(m[0]);
        if (u.protocol === "http:" || u.protocol === "https:") a.href = u.href;
      } catch (e) { /* left as text without a link */ }
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      frag.appendChild(a);
      last = m.index + m[0].length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function backoff(attempt) {
    var base = Math.min(30000, 1000 * Math.pow(2, attempt));
    return base / 2 + Math.random() * base / 2;
  }

  class SwitchboardChat extends HTMLElement {
    constructor() {
      super();
      this.saved = load();
      this.outbox = this.saved.outbox || [];
      this.items = [];
      this.state = this.saved.state || "bot";
      this.queue = null;
      this.agent = null;
      this.quickReplies = null;
      this.rated = !!this.saved.rated;
      this.csatWanted = false;
      this.ws = null;
      this.wsFailures = 0;
      this.wsOpened = false;
      this.pollTimer = null;
      this.sending = false;
      this.loaded = false;
      this.build();
    }

    build() {
      var colours = brandColours(cfg.color);
      var root = this.attachShadow({ mode: "open" });
      var style = el("style", { text: CSS_TEXT + "\n:host { --brand: " + colours.bg + "; --on-brand: " + colours.fg + "; --brand-text: " + (colours.fg === "#ffffff" ? colours.bg : "#1b1f24") + "; }" });
      var self = this;
      var title = cfg.title || T.title;
      this.launcher = el("button", {
        class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "sb-panel",
        on: { click: function () { self.open(); } }
      });
      var svg = document.createElementNS(SVG, "svg"), path = document.createElementNS(SVG, "path");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("aria-hidden", "true");
      path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
      svg.appendChild(path);
      this.launcher.appendChild(svg);
      this.launcher.appendChild(el("span", { text: T.open }));
      this.statusBox = el("div", { class: "status", role: "status", hidden: "" });
      this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
      this.quick = el("div", { class: "quick", role: "group", "aria-label": T.suggestions });
      this.input = el("textarea", { id: "sb-input", rows: "1", placeholder: T.placeholder, maxlength: "4000", autocomplete: "off" });
      this.sendBtn = el("button", { class: "send", type: "submit", text: T.send });
      // The file input is only reached through the attach button, which keyboards can use.
      this.fileInput = el("input", { type: "file", class: "sr", accept: PHOTO_TYPES.join(","), tabindex: "-1", "aria-hidden": "true",
        on: { change: function () { var f = self.fileInput.files[0]; self.fileInput.value = ""; self.attach(f); } } });
      this.attachBtn = el("button", { class: "attach", type: "button", "aria-label": T.attach, title: T.attach, hidden: "",
        on: { click: function () { self.fileInput.click(); } } });
      var clip = document.createElementNS(SVG, "svg"), clipPath = document.createElementNS(SVG, "path");
      clip.setAttribute("viewBox", "0 0 24 24");
      clip.setAttribute("aria-hidden", "true");
      clipPath.setAttribute("d", "M4 7h3l2-3h6l2 3h3a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1zm8 3a4 4 0 1 0 0 8 4 4 0 0 0 0-8zm0 2a2 2 0 1 1 0 4 2 2 0 0 1 0-4z");
      clip.appendChild(clipPath);
      this.attachBtn.appendChild(clip);
      this.form = el("form", { on: { submit: function (e) { e.preventDefault(); self.submit(); } } }, [
        el("label", { class: "sr", for: "sb-input", text: T.inputLabel }), this.input, this.attachBtn, this.sendBtn, this.fileInput
      ]);
      this.input.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); self.submit(); }
      });
      this.panel = el("section", { class: "panel", id: "sb-panel", role: "dialog", "aria-label": title }, [
        el("header", null, [
          el("h2", { text: title }),
          el("button", { class: "close", type: "button", "aria-label": T.close, text: "×", on: { click: function () { self.close(); } } })
        ]),
        this.statusBox, this.log, this.quick, this.form
      ]);
      this.panel.addEventListener("keydown", function (e) { if (e.key === "Escape") self.close(); });
      root.append(style, this.launcher, this.panel);
    }

    connectedCallback() {
      // A returning shopper gets the transcript and live updates before opening the panel.
      if (this.saved.id) this.resume();
      if (this.saved.open) this.open(true);
    }

    persist() {
      var s = { id: this.convId, token: this.token, seq: this.lastSeq || 0, outbox: this.outbox, rated: this.rated, state: this.state, open: this.panel.classList.contains("open") };
      try { localStorage.setItem(STORE_KEY, JSON.stringify(s)); } catch (e) { /* private mode: this tab only */ }
    }

    open(quiet) {
      this.panel.classList.add("open");
      this.launcher.setAttribute("aria-expanded", "true");
      if (!this.loaded && !this.saved.id) {
        this.loaded = true;
        this.addItem({ author: "bot", text: T.welcome, local: true });
        this.renderChrome();
      }
      this.persist();
      if (!quiet) this.input.focus();
      this.scroll();
    }

    close() {
      this.panel.classList.remove("open");
      this.launcher.setAttribute("aria-expanded", "false");
      this.persist();
      this.launcher.focus();
    }

    // ---- transcript -------------------------------------------------------------------

    // Adds a message unless it is already shown. A message shown from one source (the POST
    // answer, the WebSocket, a poll) and then delivered by another is matched by its server
    // id, or by author and text against the entries still waiting for an id.
    addItem(m) {
      if (m.id && this.items.some(function (i) { return i.id === m.id; })) return;
      // A photo being uploaded here is the same message as the stored one the service sends.
      if (m.attachment) {
        var mine = this.items.find(function (i) {
          return i.upload && !i.id && (i.attachmentId ? i.attachmentId === m.attachment.id : m.text === i.text);
        });
        if (mine) { mine.id = m.id; mine.attachmentId = m.attachment.id; return mine; }
      }
      if (m.id || m.fromAnswer) {
        var twin = this.items.find(function (i) {
          return i.author === m.author && i.text === m.text && !i.local &&
            (m.id ? !i.id : (i.id && !i.claimed));
        });
        if (twin) {
          if (m.id) twin.id = m.id; else twin.claimed = true;
          if (m.id && twin.node) twin.node.classList.remove("pending");
          return;
        }
      }
      var item = { id: m.id, author: m.author, text: m.text, local: !!m.local, claimed: !!m.fromAnswer, cmid: m.cmid, upload: !!m.upload };
      var who = m.author === "shopper" ? T.you : m.author === "agent" ? ((m.agent && m.agent.name) || T.agent) : m.author === "bot" ? T.bot : T.system;
      var node = el("div", { class: "msg " + (["shopper", "bot", "agent"].indexOf(m.author) >= 0 ? m.author : "system") });
      if (m.author !== "system") node.appendChild(el("span", { class: "who", text: who }));
      node.appendChild(richText(m.text || ""));
      if (m.upload || m.attachment) this.showPhoto(node, m);
      if (m.cmid) item.note = node.appendChild(el("span", { class: "note", text: m.upload ? T.photoSending : T.sending }));
      item.node = node;
      this.items.push(item);
      this.log.insertBefore(node, this.typingNode && this.typingNode.parentNode === this.log ? this.typingNode : null);
      this.scroll();
      return item;
    }

    // A thumbnail: the shopper's own file while it uploads, otherwise the stored photo,
    // fetched with the conversation's token (an <img> cannot send it). Shown as a data: URL,
    // which shop pages' content security policies allow more often than blob:.
    async showPhoto(node, m) {
      var img = el("img", { class: "photo", alt: T.photo });
      img.addEventListener("load", this.scroll.bind(this));
      node.appendChild(img);
      try {
        var blob = m.upload;
        if (!blob) {
          var r = await fetch(BASE + m.attachment.url, { headers: { "Authorization": "Bearer " + this.token } });
          if (!r.ok) return;
          blob = await r.blob();
        }
        img.src = await new Promise(function (ok, fail) {
          var reader = new FileReader();
          reader.onload = function () { ok(reader.result); };
          reader.onerror = fail;
          reader.readAsDataURL(blob);
        });
      } catch (e) { /* the alt text stands in */ }
    }

    removeItem(item) {
      item.node.remove();
      this.items.splice(this.items.indexOf(item), 1);
    }

    // ---- photos -----------------------------------------------------------------------

    attach(file) {
      if (!file || !this.convId) return;
      var refusal = PHOTO_TYPES.indexOf(file.type) < 0 ? T.notPhoto : file.size > MAX_PHOTO ? T.photoTooBig : null;
      if (refusal) return this.addItem({ author: "system", text: refusal, local: true });
      this.upload(file, this.addItem({ author: "shopper", text: "", upload: file, cmid: uuid() }));
    }

    // Uploads a photo, retrying network failures and 5xx with the same client_message_id (so
    // it is stored once); a refusal removes it from the transcript and says why.
    async upload(file, item) {
      var path = "/api/v1/conversations/" + encodeURIComponent(this.convId) + "/attachments?client_message_id=" + encodeURIComponent(item.cmid);
      this.setTyping(true);
      for (var attempt = 0; attempt < 6; attempt++) {
        var r = null;
        try {
          r = await fetch(BASE + path, { method: "POST", body: file, headers: { "Authorization": "Bearer " + this.token, "Content-Type": file.type } });
        } catch (e) { r = null; }
        if (r && r.ok) {
          var a = await r.json();
          item.attachmentId = a.attachment.id;
          if (item.note) { item.note.remove(); item.note = null; }
          this.applyAnswer(a);
          return;
        }
        if (r && r.status < 500 && r.status !== 429) {
          this.setTyping(false);
          this.removeItem(item);
          this.addItem({ author: "system", text: r.status === 415 ? T.notPhoto : r.status === 413 ? T.photoTooBig : T.photoFailed, local: true });
          return;
        }
        if (item.note) item.note.textContent = T.failed;
        await sleep(backoff(attempt));
      }
      this.setTyping(false);
      this.removeItem(item);
      this.addItem({ author: "system", text: T.photoFailed, local: true });
    }

    scroll() { this.log.scrollTop = this.log.scrollHeight; }

    setTyping(on) {
      if (on && !this.typingNode) {
        this.typingNode = el("div", { class: "typing", role: "status", "aria-label": T.typing }, [el("span"), el("span"), el("span")]);
        this.log.appendChild(this.typingNode);
        this.scroll();
      } else if (!on && this.typingNode) {
        this.typingNode.remove();
        this.typingNode = null;
      }
    }

    // The banner, quick replies and rating that follow from the conversation's state.
    renderChrome() {
      var self = this;
      var lines = [];
      if (this.state === "waiting_for_human") {
        lines = [T.waiting, this.queue && this.queue.position ? T.position(
          this.queue.position,
          // No agent online: say where they are, not a made-up wait.
          this.queue.expected_wait_seconds == null ? null : Math.ceil(this.queue.expected_wait_seconds / 60)
        ) : T.waitingHint];
      } else if (this.state === "with_human") {
        lines = [T.withAgent(this.agent && this.agent.name)];
      } else if (this.state === "resolved") {
        lines = [T.resolved];
      }
      // Rebuilt only when something changed: a poll every few seconds must neither steal the
      // keyboard focus from a quick reply nor make a screen reader repeat the banner.
      this.attachBtn.hidden = !this.convId;
      var statusKey = this.state + "|" + lines.join("|");
      if (statusKey !== this.statusKey) {
        this.statusKey = statusKey;
        var box = this.statusBox;
        box.replaceChildren();
        if (lines[0]) box.appendChild(el("strong", { text: lines[0] }));
        if (lines[1]) box.appendChild(el("span", { class: "queue", text: lines[1] }));
        box.hidden = lines.length === 0;
        box.dataset.state = this.state;
      }

      var choices = [];
      if (this.state === "bot" || this.state === "resolved") {
        choices = this.quickReplies && this.quickReplies.length ? this.quickReplies : T.quick;
      }
      var quickKey = JSON.stringify(choices);
      if (quickKey !== this.quickKey) {
        this.quickKey = quickKey;
        this.quick.replaceChildren();
        choices.forEach(function (q) {
          self.quick.appendChild(el("button", { type: "button", text: q.label, on: { click: function () { self.send(q.text); } } }));
        });
      }
      if ((this.csatWanted || this.state === "resolved") && !this.rated && !this.csatNode) this.showCsat();
    }

    showCsat() {
      var self = this;
      var scale = el("div", { class: "scale", role: "group", "aria-label": T.rateQ });
      for (var n = 1; n <= 5; n++) {
        (function (score) {
          scale.appendChild(el("button", { type: "button", "aria-label": T.rateLabel(score), text: String(score), on: { click: function () { self.rate(score); } } }));
        })(n);
      }
      this.csatNode = el("div", { class: "csat" }, [
        el("p", { text: T.rateQ }), scale,
        el("div", { class: "ends", "aria-hidden": "true" }, [el("span", { text: T.rateLow }), el("span", { text: T.rateHigh })])
      ]);
      this.log.appendChild(this.csatNode);
      this.scroll();
    }

    async rate(score) {
      try {
        var r = await this.api("POST", "/api/v1/conversations/" + encodeURIComponent(this.convId) + "/csat", { score: score });
        if (!r.ok && r.status !== 409) throw new Error("csat " + r.status);
        this.rated = true;
        this.persist();
        this.csatNode.replaceChildren(el("p", { text: T.thanks }));
      } catch (e) {
        this.addItem({ author: "system", text: T.error, local: true });
      }
    }

    // ---- talking to the service ---------------------------------------------------------

    api(method, path, body) {
      var headers = { "Accept": "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (this.token) headers["Authorization"] = "Bearer " + this.token;
      return fetch(BASE + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) });
    }

    submit() {
      var text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      this.send(text);
    }

    // Queues a message and shows it at once; `flush` delivers the queue in order.
    send(text) {
      var msg = { cmid: uuid(), text: text };
      this.outbox.push(msg);
      this.persist();
      this.addItem({ author: "shopper", text: text, cmid: msg.cmid });
      this.flush();
    }

    // Delivers queued messages one at a time. A network failure, a 5xx or a 429 keeps the
    // message and retries it later with the SAME client_message_id, so the server stores it
    // once however many times it arrives.
    async flush() {
      if (this.sending) return;
      this.sending = true;
      var attempt = 0;
      try {
        while (this.outbox.length) {
          var msg = this.outbox[0];
          var item = this.items.find(function (i) { return i.cmid === msg.cmid; });
          this.setTyping(true);
          // No `lang`: the service detects the answer language from the text, so a shopper may
          // write Chinese on an English page.
          var body = { text: msg.text, channel: "web", client_message_id: msg.cmid };
          if (this.convId) body.conversation_id = this.convId;
          else if (CUSTOMER) { body.customer_id = CUSTOMER; body.customer_hash = HASH; }
          var resp = null, retryAfter = 0;
          try {
            resp = await this.api("POST", "/api/v1/messages", body);
            if (resp.status === 429) retryAfter = Number(resp.headers.get("Retry-After")) * 1000 || 0;
          } catch (e) { resp = null; }
          if (!resp || resp.status >= 500 || resp.status === 429) {
            if (item && item.note) item.note.textContent = T.failed;
            this.setOffline(true);
            await sleep(Math.max(retryAfter, backoff(attempt++)));
            continue;
          }
          attempt = 0;
          this.setOffline(false);
          this.outbox.shift();
          if (item && item.note) { item.note.remove(); item.note = null; }
          if (!resp.ok) {
            var err = {};
            try { err = await resp.json(); } catch (e) { /* not JSON */ }
            this.setTyping(false);
            this.addItem({ author: "system", text: resp.status === 413 || resp.status === 422 && /long/.test(err.message || "") ? T.tooLong : T.error, local: true });
            this.persist();
            continue;
          }
          var a = await resp.json();
          this.applyAnswer(a);
        }
      } finally {
        this.sending = false;
        this.setTyping(false);
        this.persist();
      }
    }

    applyAnswer(a) {
      var fresh = !this.convId;
      this.convId = a.conversation_id;
      if (a.conversation_token) this.token = a.conversation_token;
      var self = this;
      (a.replies || []).forEach(function (r) { self.addItem({ author: "bot", text: r.text, fromAnswer: true }); });
      if (a.state) this.state = a.state;
      if (a.queue) this.queue = a.queue;
      // The server sends quick replies as the text to send; a {label, text} pair also works.
      this.quickReplies = (a.quick_replies || []).map(function (q) {
        return typeof q === "string" ? { label: q, text: q } : q;
      });
      this.setTyping(false);
      this.renderChrome();
      this.persist();
      if (fresh) this.live();
    }

    setOffline(on) {
      if (on && !this.offlineNode) {
        this.offlineNode = el("div", { class: "msg system offline", text: T.offline });
        this.log.appendChild(this.offlineNode);
        this.scroll();
      } else if (!on && this.offlineNode) {
        this.offlineNode.remove();
        this.offlineNode = null;
      }
    }

    // A reloaded page: fetch the transcript, then follow the conversation live and deliver
    // anything left unsent.
    async resume() {
      this.convId = this.saved.id;
      this.token = this.saved.token;
      this.lastSeq = this.saved.seq || 0;
      this.loaded = true;
      for (var attempt = 0; ; attempt++) {
        var r = null;
        try { r = await this.api("GET", "/api/v1/conversations/" + encodeURIComponent(this.convId)); } catch (e) { r = null; }
        if (r && (r.status === 401 || r.status === 403 || r.status === 404)) {
          // The conversation is gone or the token expired: start afresh.
          try { localStorage.removeItem(STORE_KEY); } catch (e) { /* ignore */ }
          this.convId = this.token = null;
          this.state = "bot";
          this.addItem({ author: "bot", text: T.welcome, local: true });
          this.renderChrome();
          this.flush();
          return;
        }
        if (r && r.ok) { this.applyConversation(await r.json()); break; }
        this.setOffline(true);
        await sleep(backoff(attempt));
      }
      this.setOffline(false);
      // Unsent messages were restored into the transcript by the GET when they did arrive;
      // show the rest as pending and send them again with their ids.
      var self = this;
      this.outbox.forEach(function (m) {
        var arrived = self.items.slice(-6).some(function (i) { return i.author === "shopper" && i.text === m.text; });
        if (!arrived) self.addItem({ author: "shopper", text: m.text, cmid: m.cmid });
      });
      this.live();
      this.flush();
    }

    applyConversation(c) {
      var self = this;
      var before = this.items.length;
      if (c.agent) this.agent = c.agent;
      (c.messages || []).forEach(function (m) {
        if (m.private) return;
        if (m.author === "agent" && !m.agent && self.agent && self.agent.id === m.agent_id) m = Object.assign({}, m, { agent: self.agent });
        self.addItem(m);
      });
      // History is not the answer to a message in flight; only then may an answer claim it.
      if (!this.sending) this.items.slice(before).forEach(function (i) { i.claimed = true; });
      if (c.state) this.state = c.state;
      this.queue = c.queue || (c.state === "waiting_for_human" ? this.queue : null);
      if (c.csat) this.rated = true;
      this.renderChrome();
      this.persist();
    }

    // Live updates over the conversation's WebSocket, resuming after the last event seen;
    // when the socket is unavailable, polls the conversation every 3 seconds instead.
    live() {
      if (!this.convId || this.ws) return;
      var self = this;
      var url = WS_BASE + "/api/v1/conversations/" + encodeURIComponent(this.convId) + "/events?token=" + encodeURIComponent(this.token) + "&after=" + (this.lastSeq || 0);
      var ws;
      try { ws = new WebSocket(url); } catch (e) { return this.startPolling(); }
      this.ws = ws;
      var opened = false;
      ws.onopen = function () { opened = true; self.wsOpened = true; self.wsFailures = 0; self.stopPolling(); self.setOffline(false); };
      ws.onmessage = function (e) {
        var ev;
        try { ev = JSON.parse(e.data); } catch (x) { return; }
        self.onEvent(ev);
      };
      ws.onclose = function () {
        self.ws = null;
        if (!opened) self.wsFailures++;
        // A socket that never opened twice in a row means this server has none: poll, and
        // try the socket again now and then.
        if (!self.wsOpened && self.wsFailures >= 2) self.startPolling();
        else if (opened) { self.setOffline(true); self.catchUp(); }
        setTimeout(function () { self.live(); }, backoff(Math.min(self.wsFailures, 5)));
      };
    }

    // After a dropped socket: one fetch of the conversation fills any gap at once.
    async catchUp() {
      try {
        var r = await this.api("GET", "/api/v1/conversations/" + encodeURIComponent(this.convId));
        if (r.ok) { this.applyConversation(await r.json()); this.setOffline(false); }
      } catch (e) { /* the reconnecting socket will catch up */ }
    }

    onEvent(ev) {
      // Ephemeral frames (the place in line) repeat the last stored sequence: they are not
      // part of the history to resume from, so they neither advance nor fail the check.
      if (typeof ev.seq === "number" && !ev.ephemeral) {
        if (ev.seq <= (this.lastSeq || 0)) return;
        this.lastSeq = ev.seq;
      }
      var d = ev.data || {};
      switch (ev.type) {
        case "message_added":
          if (d.message && !d.message.private) {
            if (d.message.author !== "shopper") this.setTyping(false);
            this.addItem(d.message);
          }
          break;
        case "state_changed":
          this.state = d.to || this.state;
          if (this.state !== "waiting_for_human") this.queue = null;
          break;
        case "queue_changed":
          this.queue = d;
          break;
        case "assigned":
          this.agent = d.agent || null;
          break;
        case "csat_requested":
          this.csatWanted = true;
          break;
      }
      this.renderChrome();
      this.persist();
    }

    startPolling() {
      if (this.pollTimer) return;
      var self = this;
      this.pollTimer = setInterval(function () { if (!self.sending) self.catchUp(); }, 3000);
    }

    stopPolling() {
      if (this.pollTimer) { clearInterval(this.pollTimer); this.pollTimer = null; }
    }
  }

  customElements.define("switchboard-chat", SwitchboardChat);

  function mount() {
    if (!document.querySelector("switchboard-chat")) document.body.appendChild(document.createElement("switchboard-chat"));
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
