/*! Switchboard agent console. An agent signs in with their token and works the human queue:
 * the queue in service order with SLA countdowns, claims, the transcript with the bot's
 * reading of each shopper message, the customer, suggested replies, replies and notes,
 * transfer, hand back and resolve. Live over the agent WebSocket. Plain JavaScript; the
 * helpers are in shared.js. Server text only ever enters the page as text nodes.
 */
(function () {
  "use strict";

  var C = window.SwitchboardConsole;
  var el = C.el;
  var put = C.put;
  var tokens = C.tokenStore("switchboard-console:agent-token");
  var api = C.client(tokens.get);
  var CODES = ["answered", "refund_issued", "replacement_sent", "order_updated", "no_response", "other"];
  var SOUND_KEY = "switchboard-console:sound";

  var lang = C.pickLang();
  var T = C.STRINGS[lang];

  // Everything the page knows; rendering reads it, events and API answers change it.
  var S = {
    me: null,
    held: [],
    queue: null,
    queueIds: null,
    directory: { agents: [], teams: [] },
    current: null,
    currentId: null,
    shown: {},
    unread: {},
    lastSeq: 0,
    ws: null,
    wsFailures: 0,
    live: false,
    mode: "reply",
    claiming: false,
    sound: loadSound(),
    alerts: 0,
    blobs: {},
    timers: [],
  };
  // The shell's parts that stay in place while their contents change.
  var V = {};

  function loadSound() {
    try { return localStorage.getItem(SOUND_KEY) !== "off"; } catch (e) { return true; }
  }

  // ---- Alerts: a short beep (WebAudio) and, when the tab is hidden, a notification.

  var audio = null;
  function unlockAudio() {
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
  }

  function beep() {
    if (!S.sound || !audio) return;
    try {
      var now = audio.currentTime;
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.setValueAtTime(880, now);
      osc.frequency.setValueAtTime(660, now + 0.12);
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
      osc.connect(gain).connect(audio.destination);
      osc.start(now);
      osc.stop(now + 0.32);
    } catch (e) { /* no audio device */ }
  }

  function askNotificationPermission() {
    if ("Notification" in window && Notification.permission === "default") {
      try { Notification.requestPermission(); } catch (e) { /* old API */ }
    }
  }

  /** A new conversation or message: sound, a notification when hidden, and a live message. */
  function alertAgent(kind, text) {
    S.alerts++;
    document.body.dataset.alerts = String(S.alerts);
    document.body.dataset.lastAlert = kind;
    beep();
    announce(text);
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      try {
        var n = new Notification(T.product + " · " + T.consoleTitle, { body: text, tag: "switchboard-" + kind });
        n.onclick = function () { window.focus(); n.close(); };
        S.notified = (S.notified || 0) + 1;
        document.body.dataset.notified = String(S.notified);
      } catch (e) { /* notifications unavailable */ }
    }
  }

  function announce(text) {
    if (!V.announcer) return;
    V.announcer.textContent = "";
    setTimeout(function () { V.announcer.textContent = text; }, 50);
  }

  function flash(text, isError) {
    if (!V.flash) return;
    V.flash.textContent = text;
    V.flash.className = "flash" + (isError ? " error" : "");
    clearTimeout(V.flashTimer);
    V.flashTimer = setTimeout(function () { V.flash.textContent = ""; }, 6000);
  }

  function errorText(e) {
    if (e && e.code === "at_capacity") return T.atCapacity;
    if (e && e.code === "already_taken") return T.taken;
    if (e && e.status === 0) return T.network;
    return T.failed((e && e.message) || "?");
  }

  // ---- Sign in.

  function showSignIn(message) {
    stopLive();
    document.documentElement.lang = lang;
    document.title = T.product + " · " + T.consoleTitle;
    var app = document.getElementById("app");
    var header = el("header", { class: "topbar" }, [
      el("span", { class: "brand" }, [el("strong", { text: T.product }), " ", el("span", { text: T.consoleTitle })]),
      el("span", { class: "spacer" }),
      C.langSwitch(T, lang, function (l) { setLang(l); showSignIn(); }),
    ]);
    var form = C.signInForm(T, T.tokenLabel, T.tokenHelp, async function (token) {
      unlockAudio();
      askNotificationPermission();
      tokens.set(token);
      var err = await start();
      if (err) tokens.clear();
      return err;
    }, el("p", { class: "help" }, [el("a", { href: "/console/admin", text: T.openAdmin })]));
    app.replaceChildren(header, el("main", { class: "signin-page" }, [form]));
    if (message) form.querySelector(".error").textContent = message;
  }

  /** Checks the stored token and opens the console; returns an error message on failure. */
  async function start() {
    try {
      var me = await api("GET", "/api/v1/agent/me");
      S.me = me.agent;
      S.held = me.held;
      S.lastSeq = me.last_seq;
    } catch (e) {
      if (e.status === 401) return T.badToken;
      if (e.status === 403) {
        var frag = document.createDocumentFragment();
        frag.appendChild(document.createTextNode(T.adminTokenHere + " "));
        frag.appendChild(el("a", { href: "/console/admin", text: T.openAdmin }));
        return frag;
      }
      return errorText(e);
    }
    buildShell();
    await Promise.all([refreshQueue(), refreshDirectory()]);
    if (S.held.length && !S.currentId) openConversation(S.held[0].conversation_id);
    connect();
    S.timers.push(setInterval(tick, 1000));
    S.timers.push(setInterval(refreshQueue, 15000));
    S.timers.push(setInterval(refreshDirectory, 30000));
    return null;
  }

  function signOut() {
    tokens.clear();
    S.timers.forEach(clearInterval);
    S.timers = [];
    S.me = null;
    S.current = null;
    S.currentId = null;
    S.queue = null;
    S.queueIds = null;
    showSignIn();
  }

  function setLang(l) {
    lang = l;
    T = C.STRINGS[l];
    document.documentElement.lang = l;
  }

  // ---- The shell: header, queue and my conversations, the conversation, the customer.

  function buildShell() {
    document.documentElement.lang = lang;
    document.title = T.product + " · " + T.consoleTitle;
    var app = document.getElementById("app");
    V.status = el("span", { class: "live-status", role: "status" });
    V.meLine = el("span", { class: "me" });
    var soundBtn = el("button", { type: "button", class: "ghost sound", "aria-pressed": String(S.sound), on: { click: function () {
      S.sound = !S.sound;
      soundBtn.setAttribute("aria-pressed", String(S.sound));
      try { localStorage.setItem(SOUND_KEY, S.sound ? "on" : "off"); } catch (e) { /* blocked */ }
      unlockAudio();
      askNotificationPermission();
    } } }, [el("span", { "aria-hidden": "true", text: "♪ " }), T.sound]);
    V.availability = el("select", { id: "my-status", on: { change: function () { setStatus(V.availability.value); } } }, [
      el("option", { value: "online", text: T.statusNames.online }),
      el("option", { value: "away", text: T.statusNames.away }),
    ]);
    var header = el("header", { class: "topbar" }, [
      el("span", { class: "brand" }, [el("strong", { text: T.product }), " ", el("span", { text: T.consoleTitle })]),
      V.meLine,
      el("span", { class: "my-status" }, [el("label", { for: "my-status", text: T.status }), V.availability]),
      el("span", { class: "spacer" }),
      V.status,
      soundBtn,
      C.langSwitch(T, lang, function (l) { setLang(l); rebuild(); }),
      el("button", { type: "button", class: "ghost", text: T.signOut, on: { click: signOut } }),
    ]);

    V.claimNext = el("button", { type: "button", class: "primary", "aria-keyshortcuts": "Alt+N", on: { click: claimNext } }, [T.claimNext, " ", el("kbd", { text: "Alt+N" })]);
    V.queueCount = el("span", { class: "count" });
    V.queueList = el("ol", { class: "queue-list", "aria-labelledby": "queue-h" });
    V.mineList = el("ul", { class: "mine-list", "aria-labelledby": "mine-h" });
    var left = el("nav", { class: "col left", "aria-label": T.queue }, [
      el("section", { class: "panel queue" }, [
        el("div", { class: "panel-head" }, [el("h2", { id: "queue-h" }, [T.queue, " ", V.queueCount]), V.claimNext]),
        V.queueList,
      ]),
      el("section", { class: "panel mine" }, [
        el("div", { class: "panel-head" }, [el("h2", { id: "mine-h", text: T.mine })]),
        V.mineList,
      ]),
      shortcutsHelp(),
    ]);

    V.convHead = el("div", { class: "conv-head" });
    V.banner = el("div", { class: "banner", hidden: true });
    V.transcript = el("ol", { class: "transcript", role: "log", "aria-live": "polite", "aria-label": T.transcript, tabindex: "0" });
    V.suggestions = el("section", { class: "suggestions", "aria-labelledby": "sugg-h" });
    V.composer = buildComposer();
    V.actions = el("section", { class: "actions", "aria-label": T.actions });
    V.empty = el("p", { class: "empty-conv", text: T.pickConversation });
    V.flash = el("p", { class: "flash", role: "status", "aria-live": "polite" });
    var center = el("main", { class: "col center", id: "conversation" }, [
      V.empty, V.convHead, V.actions, V.banner, V.transcript, V.suggestions, V.composer, V.flash,
    ]);
    V.customer = el("aside", { class: "col right", "aria-label": T.customer });
    V.announcer = el("div", { class: "sr-only", "aria-live": "polite" });
    app.replaceChildren(header, el("div", { class: "layout" }, [left, center, V.customer]), V.announcer);
    renderMeLine();
    renderLive();
    renderQueue();
    renderMine();
    renderConversation(true);
  }

  function rebuild() {
    var draft = V.input ? V.input.value : "";
    buildShell();
    V.input.value = draft;
  }

  function shortcutsHelp() {
    return el("section", { class: "panel shortcuts", "aria-labelledby": "keys-h" }, [
      el("h2", { id: "keys-h", text: T.shortcuts }),
      el("dl", {}, T.keys.reduce(function (acc, k) {
        acc.push(el("dt", {}, [el("kbd", { text: k[0] })]));
        acc.push(el("dd", { text: k[1] }));
        return acc;
      }, [])),
    ]);
  }

  /** Online takes new conversations; away keeps what the agent holds and takes nothing new. */
  async function setStatus(status) {
    try {
      S.me = await api("PATCH", "/api/v1/agent/me", { status: status });
      renderMeLine();
      flash(T.statusNames[S.me.status] || S.me.status);
    } catch (e) {
      flash(errorText(e), true);
      renderMeLine();
    }
  }

  function renderMeLine() {
    if (!S.me || !V.meLine) return;
    if (V.availability) V.availability.value = S.me.status === "away" ? "away" : "online";
    V.meLine.replaceChildren(
      el("span", { class: "me-name", text: S.me.name }),
      el("span", { class: "me-load", title: T.loadCol, text: T.load(S.held.length, S.me.capacity) }),
    );
  }

  function renderLive() {
    if (!V.status) return;
    V.status.className = "live-status " + (S.live ? "on" : "off");
    V.status.textContent = S.live ? T.live : T.reconnecting;
  }

  // ---- The queue.

  /** A customer id as shown: anonymous shoppers' generated ids read "Anonymous shopper". */
  function anonymousOr(id) {
    return String(id || "").indexOf("anon-") === 0 ? T.anonymous : id;
  }

  function customerName(c, fallbackId) {
    if (c && c.name) return c.name;
    if (c && c.verified === false) return T.anonymous;
    return fallbackId || T.anonymous;
  }

  function badges(c, currency) {
    var out = [];
    if (!c) return out;
    var tier = c.tier || "standard";
    out.push(el("span", { class: "badge tier tier-" + tier, title: T.tier, text: T.tiers[tier] || tier }));
    if (c.verified === false) {
      out.push(el("span", { class: "badge muted", text: T.unverified }));
      return out;
    }
    out.push(el("span", { class: "badge", title: T.ltv, text: T.ltv + " " + C.money(c.lifetime_spend_cents, lang, currency) }));
    if (c.order_count !== undefined) out.push(el("span", { class: "badge", text: c.order_count + " " + T.orders }));
    var n = c.complaints_90d || 0;
    out.push(el("span", { class: "badge " + (n ? "warn" : "muted"), text: n ? T.complaints(n) : T.noComplaints }));
    return out;
  }

  /** The SLA clock of a waiting conversation: text and `ok`/`amber`/`red`. */
  function sla(due, since) {
    var now = Date.now();
    var d = Date.parse(due);
    if (isNaN(d)) return null;
    var left = (d - now) / 1000;
    if (left < 0) return { cls: "red", text: T.overdue(C.duration(-left)) };
    var start = Date.parse(since);
    var total = isNaN(start) ? 0 : (d - start) / 1000;
    // Amber once less than a third of the time to the deadline is left (or two minutes).
    var amber = left <= Math.max(total / 3, 120);
    return { cls: amber ? "amber" : "ok", text: T.dueIn(C.duration(left)) };
  }

  function slaNode(due, since) {
    var s = sla(due, since);
    if (!s) return null;
    return el("span", { class: "sla " + s.cls, "data-due": due, "data-since": since || "", text: s.text });
  }

  /**
   * Rebuilds a list only when what it shows changed, and keeps keyboard focus on the same
   * control of the same conversation when it does: refreshes must not pull focus from under an
   * agent tabbing through the queue.
   */
  function rebuildList(list, key, build) {
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    var focused = document.activeElement;
    var keep = null;
    if (focused && list.contains(focused)) {
      var item = focused.closest("[data-id]");
      keep = item ? { id: item.dataset.id, cls: focused.className } : null;
    }
    build();
    if (keep) {
      var again = Array.from(list.querySelectorAll("[data-id]")).filter(function (n) { return n.dataset.id === keep.id; })[0];
      // A queue card's buttons end their class with what they do (`claim`, `open`).
      var target = again && (again.tagName === "BUTTON" ? again : again.querySelector("button." + keep.cls.split(" ").pop()));
      if (target) target.focus();
    }
  }

  function renderQueue() {
    if (!V.queueList) return;
    var items = (S.queue || []);
    V.queueCount.textContent = "(" + items.length + ")";
    rebuildList(V.queueList, JSON.stringify([lang, S.currentId, items]), function () { buildQueue(items); });
  }

  function buildQueue(items) {
    if (!items.length) {
      V.queueList.replaceChildren(el("li", { class: "empty", text: T.queueEmpty }));
      return;
    }
    V.queueList.replaceChildren.apply(V.queueList, items.map(function (q) {
      var name = customerName(q.customer, q.customer && q.customer.id);
      var meta = [];
      if (q.intent) meta.push(el("span", {}, [el("span", { class: "k", text: T.intent + ": " }), el("code", { text: q.intent })]));
      if (q.reason) meta.push(el("span", {}, [el("span", { class: "k", text: T.reason + ": " }), el("code", { text: q.reason })]));
      if (q.team) meta.push(el("span", {}, [el("span", { class: "k", text: T.team + ": " }), q.team]));
      var last = (q.last_messages || []).slice(-1)[0];
      var li = el("li", { class: "qitem" + (q.conversation_id === S.currentId ? " current" : ""), "data-id": q.conversation_id, "data-tier": q.tier || "" }, [
        el("div", { class: "qtop" }, [
          el("span", { class: "pos", text: T.position(q.position) }),
          el("strong", { class: "name", text: name }),
          el("span", { class: "badge lang", text: (q.lang || "").toUpperCase() }),
          slaNode(q.sla_due, q.waiting_since),
        ]),
        el("div", { class: "badges" }, badges(q.customer)),
        el("div", { class: "meta" }, meta),
        last ? el("p", { class: "last", text: "“" + last + "”" }) : null,
        el("div", { class: "qactions" }, [
          el("button", { type: "button", class: "primary small claim", "aria-label": T.claim + ": " + name, text: T.claim, on: { click: function () { claim(q.conversation_id); } } }),
          el("button", { type: "button", class: "ghost small open", "aria-label": T.open + ": " + name, text: T.open, on: { click: function () { openConversation(q.conversation_id); } } }),
        ]),
      ]);
      return li;
    }));
  }

  function renderMine() {
    if (!V.mineList) return;
    renderMeLine();
    rebuildList(V.mineList, JSON.stringify([lang, S.currentId, S.held, S.unread]), buildMine);
  }

  function buildMine() {
    if (!S.held.length) {
      V.mineList.replaceChildren(el("li", { class: "empty", text: T.mineEmpty }));
      return;
    }
    V.mineList.replaceChildren.apply(V.mineList, S.held.map(function (h) {
      var name = h.customer_name || anonymousOr(h.customer_id);
      var current = h.conversation_id === S.currentId;
      return el("li", {}, [
        el("button", { type: "button", class: "mine-item" + (current ? " current" : ""), "aria-current": current ? "true" : null, "data-id": h.conversation_id, on: { click: function () { openConversation(h.conversation_id); } } }, [
          el("span", { class: "name", text: name }),
          el("span", { class: "badge lang", text: (h.lang || "").toUpperCase() }),
          S.unread[h.conversation_id] ? el("span", { class: "unread", "aria-label": "new", text: "●" }) : null,
        ]),
      ]);
    }));
  }

  /** Moves the SLA clocks every second without rebuilding anything. */
  function tick() {
    document.querySelectorAll(".sla[data-due]").forEach(function (n) {
      var s = sla(n.dataset.due, n.dataset.since);
      if (!s) return;
      n.textContent = s.text;
      n.className = "sla " + s.cls;
    });
  }

  var queueTimer = null;
  function scheduleQueue() {
    clearTimeout(queueTimer);
    queueTimer = setTimeout(refreshQueue, 200);
  }

  async function refreshQueue() {
    if (!S.me) return;
    try {
      var q = await api("GET", "/api/v1/agent/queue");
      var ids = {};
      var fresh = [];
      q.items.forEach(function (i) {
        ids[i.conversation_id] = true;
        if (S.queueIds && !S.queueIds[i.conversation_id]) fresh.push(i);
      });
      S.queue = q.items;
      S.queueIds = ids;
      renderQueue();
      if (fresh.length) alertAgent("conversation", T.notifyNew + ": " + customerName(fresh[0].customer, fresh[0].customer.id));
    } catch (e) {
      if (e.status === 401) signOut();
    }
  }

  async function refreshMe() {
    try {
      var me = await api("GET", "/api/v1/agent/me");
      S.me = me.agent;
      S.held = me.held;
      renderMine();
    } catch (e) {
      if (e.status === 401) signOut();
    }
  }

  async function refreshDirectory() {
    try {
      S.directory = await api("GET", "/api/v1/agent/directory");
      if (S.current) renderActions();
    } catch (e) { /* kept from before */ }
  }

  // ---- Actions run one after another, in the order the agent asked for them: a click while
  // another action is on its way waits for it instead of being lost, and each checks what it
  // needs (holding the conversation, text in the box) when its turn comes.

  var actions = Promise.resolve();
  function serial(task) {
    var run = actions.then(task, task);
    actions = run.catch(function () { /* reported by the task */ });
    return run;
  }

  // ---- Claims. A repeated "claim next" while one is on its way is dropped: it would take a
  // second conversation.

  function claimNext() {
    if (S.claiming) return;
    S.claiming = true;
    return serial(async function () {
      try {
        var c = await api("POST", "/api/v1/agent/claims", {});
        if (!c) { flash(T.nothingToClaim); return; }
        await claimed(c);
      } catch (e) {
        flash(errorText(e), true);
      } finally {
        S.claiming = false;
      }
    });
  }

  function claim(id) {
    return serial(async function () {
      try {
        var c = await api("POST", "/api/v1/agent/conversations/" + encodeURIComponent(id) + "/claim", {});
        await claimed(c);
      } catch (e) {
        flash(errorText(e), true);
        scheduleQueue();
      }
    });
  }

  async function claimed(c) {
    showConversation(c);
    flash(T.claimed);
    V.input.focus();
    await Promise.all([refreshMe(), refreshQueue()]);
  }

  // ---- The conversation.

  async function openConversation(id) {
    try {
      var c = await api("GET", "/api/v1/agent/conversations/" + encodeURIComponent(id));
      showConversation(c);
    } catch (e) {
      flash(errorText(e), true);
    }
  }

  function showConversation(c) {
    var switched = c.conversation.id !== S.currentId;
    if (switched && V.input) V.input.value = "";
    S.current = c;
    S.currentId = c.conversation.id;
    delete S.unread[S.currentId];
    renderConversation(switched);
    renderQueue();
    renderMine();
  }

  async function reloadCurrent() {
    if (!S.currentId) return;
    try {
      var c = await api("GET", "/api/v1/agent/conversations/" + encodeURIComponent(S.currentId));
      if (c.conversation.id === S.currentId) { S.current = c; renderConversation(false); }
    } catch (e) { /* the next event tries again */ }
  }

  function holding() {
    var c = S.current && S.current.conversation;
    return !!(c && S.me && c.state === "with_human" && c.agent_id === S.me.id);
  }

  function agentName(id) {
    var a = (S.directory.agents || []).filter(function (x) { return x.id === id; })[0];
    if (a) return a.name;
    if (S.me && S.me.id === id) return S.me.name;
    return id;
  }

  function renderConversation(switched) {
    if (!V.convHead) return;
    var has = !!S.current;
    [V.convHead, V.transcript, V.suggestions, V.composer, V.actions].forEach(function (n) { n.hidden = !has; });
    V.empty.hidden = has;
    if (!has) { V.banner.hidden = true; V.customer.replaceChildren(); return; }
    var c = S.current.conversation;
    var cust = S.current.customer;
    var name = cust && cust.name ? cust.name : anonymousOr(c.customer_id);
    var ticket = S.current.ticket;
    put(V.convHead, [
      el("h2", { id: "conv-h" }, [name]),
      el("span", { class: "state state-" + c.state, text: T.states[c.state] || c.state }),
      c.agent_id ? el("span", { class: "holder", text: T.agent + ": " + agentName(c.agent_id) }) : null,
      c.state === "waiting_for_human" && ticket ? slaNode(ticket.sla_due, c.handoff && c.handoff.at) : null,
    ]);
    renderBanner();
    if (switched) {
      S.shown = {};
      V.transcript.replaceChildren();
      // A whole transcript at once is not news: screen readers announce only later messages.
      V.transcript.setAttribute("aria-busy", "true");
    }
    c.messages.forEach(addMessage);
    V.transcript.removeAttribute("aria-busy");
    renderSuggestions();
    renderComposer();
    renderActions();
    renderCustomer();
    if (switched) V.transcript.scrollTop = V.transcript.scrollHeight;
  }

  function renderBanner() {
    var c = S.current.conversation;
    var text = null, claimBtn = null;
    if (holding()) {
      V.banner.hidden = true;
      return;
    }
    if (c.state === "with_human") text = T.readOnlyHeld(agentName(c.agent_id));
    else if (c.state === "waiting_for_human") {
      text = T.readOnlyWaiting;
      claimBtn = el("button", { type: "button", class: "primary small", text: T.claimThis, on: { click: function () { claim(c.id); } } });
    } else if (c.state === "resolved") {
      var parts = [T.resolvedAs((T.codes[c.resolution] || c.resolution || ""))];
      parts.push(T.rating + ": " + (c.csat_score ? c.csat_score + "/5" : T.ratingPending));
      text = parts.join(" · ");
    } else text = T.readOnlyState(T.states[c.state] || c.state);
    V.banner.hidden = false;
    V.banner.className = "banner" + (c.state === "resolved" ? " done" : "");
    if (!changed(V.banner, JSON.stringify([c.id, text]))) return;
    put(V.banner, [el("span", { class: "banner-text", text: text }), claimBtn]);
  }

  /** One message in the shape both the transcript endpoint and live events use. */
  function normalise(m) {
    var agent = m.agent ? m.agent.name : (m.agent_id ? agentName(m.agent_id) : null);
    return {
      id: m.id,
      author: m.author,
      text: m.text,
      at: m.at,
      private: !!m.private,
      agent: agent,
      intent: m.intent || null,
      attachment: m.attachment || null,
    };
  }

  function addMessage(raw) {
    var m = normalise(raw);
    if (m.id !== undefined && S.shown[m.id]) return;
    if (m.id !== undefined) S.shown[m.id] = true;
    var atBottom = V.transcript.scrollHeight - V.transcript.scrollTop - V.transcript.clientHeight < 40;
    var note = m.private && m.author === "agent";
    var who = m.author === "shopper" ? T.shopper
      : m.author === "bot" ? T.bot
      : m.author === "agent" ? (m.agent || T.agent)
      : T.system;
    var meta = [el("span", { class: "who", text: note ? T.note + " · " + who : who }), el("time", { datetime: m.at, text: C.time(m.at, lang) })];
    if (m.author === "shopper" && m.intent && m.intent.name) {
      var pct = Math.round((Number(m.intent.confidence) || 0) * 100);
      var low = pct < 50 || m.intent.out_of_scope;
      meta.push(el("span", { class: "intent" + (low ? " low" : ""), title: T.intent }, [
        el("code", { text: m.intent.name }), " · ", T.confidence(pct),
        m.intent.out_of_scope ? " · " + T.outOfScope : null,
      ]));
    }
    var li = el("li", { class: "msg " + m.author + (note ? " note" : "") + (m.private && m.author === "system" ? " sys" : ""), "data-id": m.id }, [
      el("div", { class: "msg-meta" }, meta),
      el("div", { class: "msg-text" }, [C.richText(m.text)]),
      m.attachment ? attachmentNode(m.attachment, m.text) : null,
    ]);
    V.transcript.appendChild(li);
    if (atBottom) V.transcript.scrollTop = V.transcript.scrollHeight;
  }

  /** A photo the shopper sent: fetched with the agent's token, shown from a blob URL. */
  function attachmentNode(a, text) {
    // Only the service's own attachment URLs (relative or absolute) get the token.
    var u;
    try { u = new URL(String(a.url || ""), location.origin); } catch (e) { return null; }
    if (u.origin !== location.origin || u.pathname.indexOf("/api/v1/attachments/") !== 0) return null;
    if (!/^image\//.test(a.content_type || "")) return null;
    var url = u.href;
    var img = el("img", { alt: text || T.attachment, loading: "lazy" });
    // The message text is shown above; it is the image's alternative text too.
    var fig = el("figure", { class: "attachment" }, [img]);
    var cached = S.blobs[url];
    if (cached) { img.src = cached; return fig; }
    fetch(url, { headers: { Authorization: "Bearer " + tokens.get() } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.blob(); })
      .then(function (b) {
        if (!/^image\//.test(b.type || a.content_type)) throw new Error("not an image");
        S.blobs[url] = URL.createObjectURL(b);
        var t = V.transcript;
        var atBottom = t.scrollHeight - t.scrollTop - t.clientHeight < 40;
        img.onload = function () { if (atBottom) t.scrollTop = t.scrollHeight; };
        img.src = S.blobs[url];
      })
      .catch(function () { fig.classList.add("broken"); img.alt = (text || T.attachment) + " (!)"; });
    return fig;
  }

  /** True when `node` shows something other than `key` (which it then remembers). */
  function changed(node, key) {
    if (node.dataset.key === key) return false;
    node.dataset.key = key;
    return true;
  }

  function renderSuggestions() {
    var list = (S.current.suggested_replies || []).slice(0, 3);
    var mine = holding();
    V.suggestions.hidden = !mine;
    if (!mine) return;
    // Rebuilt only when they change, so a focused suggestion keeps its focus.
    if (!changed(V.suggestions, JSON.stringify([lang, S.currentId, list]))) return;
    var items = list.map(function (s, i) {
      var key = "Alt+" + (i + 1);
      return el("li", {}, [
        el("button", { type: "button", class: "suggestion", title: s, "aria-keyshortcuts": key, "aria-label": T.useSuggestion + " (" + key + "): " + s, on: { click: function () { useSuggestion(i); } } }, [
          el("kbd", { text: key }),
          suggestionText(s),
        ]),
      ]);
    });
    V.suggestions.replaceChildren(
      el("h3", { id: "sugg-h", text: T.suggestions }),
      items.length ? el("ol", { class: "suggestion-list" }, items) : el("p", { class: "muted", text: T.noSuggestions }),
    );
  }

  /** A knowledge-base suggestion ("Title\n\npassage") as a bold title and two lines. */
  function suggestionText(s) {
    var at = s.indexOf("\n\n");
    if (at < 0) return el("span", { class: "s-text" }, [el("span", { class: "s-body", text: s })]);
    return el("span", { class: "s-text" }, [
      el("strong", { class: "s-title", text: s.slice(0, at) }),
      el("span", { class: "s-body", text: s.slice(at + 2) }),
    ]);
  }

  function useSuggestion(i) {
    if (!holding()) return;
    var s = (S.current.suggested_replies || [])[i];
    if (!s) return;
    setMode("reply");
    V.input.value = s;
    V.input.focus();
    V.input.setSelectionRange(s.length, s.length);
    V.input.scrollTop = V.input.scrollHeight;
  }

  function buildComposer() {
    V.input = el("textarea", { id: "reply", rows: "3", "aria-keyshortcuts": "Control+Enter", on: { keydown: function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
    } } });
    V.inputLabel = el("label", { for: "reply" });
    V.sendBtn = el("button", { type: "submit", class: "primary", "aria-keyshortcuts": "Control+Enter" });
    V.modeReply = el("input", { type: "radio", name: "mode", id: "mode-reply", value: "reply", on: { change: function () { setMode("reply"); } } });
    V.modeNote = el("input", { type: "radio", name: "mode", id: "mode-note", value: "note", on: { change: function () { setMode("note"); } } });
    return el("form", { class: "composer", on: { submit: function (e) { e.preventDefault(); send(); } } }, [
      el("fieldset", { class: "mode" }, [
        el("legend", { class: "sr-only", text: T.replyMode + " / " + T.noteMode }),
        V.modeReply, el("label", { for: "mode-reply", text: T.replyMode }),
        V.modeNote, el("label", { for: "mode-note", text: T.noteMode }),
      ]),
      V.inputLabel,
      V.input,
      el("div", { class: "composer-bar" }, [V.sendBtn]),
    ]);
  }

  function setMode(mode) {
    S.mode = mode;
    renderComposer();
  }

  function renderComposer() {
    var mine = holding();
    V.composer.hidden = !mine;
    V.modeReply.checked = S.mode === "reply";
    V.modeNote.checked = S.mode === "note";
    V.composer.classList.toggle("noting", S.mode === "note");
    V.inputLabel.textContent = S.mode === "note" ? T.noteLabel : T.replyLabel;
    V.sendBtn.replaceChildren(S.mode === "note" ? T.addNote : T.send, " ", el("kbd", { text: "Ctrl+Enter" }));
    V.input.disabled = !mine;
    V.sendBtn.disabled = !mine;
  }

  function send() {
    return serial(async function () {
      if (!holding()) return;
      var text = V.input.value.trim();
      if (!text) { V.input.focus(); return; }
      var id = S.currentId;
      var note = S.mode === "note";
      V.sendBtn.disabled = true;
      try {
        await api("POST", "/api/v1/agent/conversations/" + encodeURIComponent(id) + (note ? "/notes" : "/messages"), { text: text });
        // Only what was sent leaves the box; anything typed meanwhile stays.
        if (S.currentId === id && V.input.value.trim() === text) V.input.value = "";
        flash(note ? T.noted : T.sent);
        await reloadCurrent();
      } catch (e) {
        flash(errorText(e), true);
      } finally {
        V.sendBtn.disabled = !holding();
        V.input.focus();
      }
    });
  }

  function renderActions() {
    var mine = holding();
    V.actions.hidden = !mine;
    if (!mine) return;
    var who = (S.directory.agents || []).map(function (a) { return [a.id, a.name, a.available, a.status, a.load, a.capacity]; });
    if (!changed(V.actions, JSON.stringify([lang, S.currentId, who, S.directory.teams]))) return;
    var focusedId = document.activeElement && V.actions.contains(document.activeElement) ? document.activeElement.id || document.activeElement.className : null;
    var target = el("select", { id: "transfer-to" });
    var agents = (S.directory.agents || []).filter(function (a) { return !S.me || a.id !== S.me.id; });
    if (agents.length) target.appendChild(el("optgroup", { label: T.agentsGroup }, agents.map(function (a) {
      var status = a.available ? T.statusNames.online : a.status === "online" ? T.stale : (T.statusNames[a.status] || a.status);
      return el("option", { value: "agent:" + a.id, text: a.name + " · " + status + " · " + T.load(a.load, a.capacity) });
    })));
    target.appendChild(el("optgroup", { label: T.teamsGroup }, (S.directory.teams || []).map(function (t) {
      return el("option", { value: "team:" + t, text: t });
    })));
    // The lists are rebuilt when the conversation or the directory changes: keep the choice.
    if (S.transferTo && target.querySelector("option[value='" + CSS.escape(S.transferTo) + "']")) target.value = S.transferTo;
    target.addEventListener("change", function () { S.transferTo = target.value; });
    var code = el("select", { id: "resolve-code" }, CODES.map(function (c) { return el("option", { value: c, text: T.codes[c] }); }));
    code.value = S.resolveCode || "answered";
    code.addEventListener("change", function () { S.resolveCode = code.value; });
    V.resolveCode = code;
    restoreFocusAfter(V.actions, focusedId, function () { V.actions.replaceChildren(
      el("h3", { class: "sr-only", text: T.actions }),
      el("div", { class: "action" }, [
        el("label", { for: "transfer-to", text: T.transferTo }), target,
        el("button", { type: "button", class: "ghost transfer", text: T.transfer, on: { click: function () { transfer(target.value); } } }),
      ]),
      el("div", { class: "action" }, [
        el("button", { type: "button", class: "ghost handback", text: T.handBack, on: { click: handBack } }),
      ]),
      el("div", { class: "action" }, [
        el("label", { for: "resolve-code", text: T.resolveCode }), code,
        el("button", { type: "button", class: "primary resolve", "aria-keyshortcuts": "Alt+R", on: { click: resolve } }, [T.resolve, " ", el("kbd", { text: "Alt+R" })]),
      ]),
    ); });
  }

  /** Runs `build`, then focuses the control with the id (or class) that had focus before. */
  function restoreFocusAfter(container, focused, build) {
    build();
    if (!focused) return;
    var again = document.getElementById(focused) || container.querySelector("." + focused.split(" ").join("."));
    if (again) again.focus();
  }

  function act(path, body, done) {
    return serial(async function () {
      if (!holding()) return;
      var id = S.currentId;
      try {
        await api("POST", "/api/v1/agent/conversations/" + encodeURIComponent(id) + path, body);
        flash(done);
        await Promise.all([reloadCurrent(), refreshMe(), refreshQueue()]);
      } catch (e) {
        flash(errorText(e), true);
      }
    });
  }

  function transfer(value) {
    if (!value) return;
    var body = value.indexOf("agent:") === 0 ? { agent_id: value.slice(6) } : { team: value.slice(5) };
    return act("/transfer", body, T.transferred);
  }

  function handBack() { return act("/handback", undefined, T.handedBack); }

  function resolve() {
    var code = (V.resolveCode && V.resolveCode.value) || "answered";
    return act("/resolve", { code: code }, T.resolved);
  }

  function renderCustomer() {
    var cur = S.current;
    var c = cur.customer;
    var conv = cur.conversation;
    var parts = [el("h2", { text: T.customer })];
    var currency = (cur.recent_orders || []).map(function (o) { return o.currency; }).filter(Boolean)[0];
    if (c) {
      parts.push(el("div", { class: "profile" }, [
        el("p", { class: "cust-name" }, [el("strong", { text: c.name || c.id }), " ", el("span", { class: "muted", text: c.id })]),
        // The orders name the shop's currency; the queue's badges have none to go by.
        el("div", { class: "badges" }, badges({ tier: c.tier, lifetime_spend_cents: c.lifetime_spend_cents, order_count: c.order_count, complaints_90d: c.complaints_90d, verified: true }, currency)),
        c.tags && c.tags.length ? el("p", { class: "tags" }, c.tags.map(function (t) { return el("span", { class: "tag", text: t }); })) : null,
      ]));
    } else {
      parts.push(el("p", { class: "muted", text: T.anonymous + " · " + conv.customer_id }));
    }
    parts.push(el("h3", { text: T.recentOrders }));
    if (cur.recent_orders && cur.recent_orders.length) {
      parts.push(el("ul", { class: "orders" }, cur.recent_orders.map(function (o) {
        return el("li", {}, [
          el("div", { class: "order-top" }, [el("code", { text: o.order_id }), el("span", { class: "order-status status-" + o.status, text: T.orderStatus[o.status] || o.status })]),
          el("div", { class: "muted" }, [
            C.dateTime(o.placed_at, lang),
            o.total_cents != null ? " · " + C.money(o.total_cents, lang, o.currency) : "",
            o.carrier ? " · " + o.carrier + (o.tracking_number ? " " + o.tracking_number : "") : "",
          ]),
        ]);
      })));
    } else parts.push(el("p", { class: "muted", text: T.noOrders }));
    var t = cur.ticket;
    if (t) {
      var rows = [
        [T.tier, T.tiers[t.tier] || t.tier], [T.team, t.team], [T.priority, String(t.priority)],
        [T.reason, t.reason_code], [T.slaDue, C.dateTime(t.sla_due, lang)],
      ];
      if (conv.handoff && conv.handoff.intent) rows.splice(0, 0, [T.intent, conv.handoff.intent]);
      if (t.signals && t.signals.length) rows.push([T.signals, t.signals.join(", ")]);
      parts.push(el("h3", { text: T.ticket }));
      parts.push(el("dl", { class: "ticket" }, rows.reduce(function (acc, r) {
        acc.push(el("dt", { text: r[0] }));
        acc.push(el("dd", { text: r[1] }));
        return acc;
      }, [])));
    }
    V.customer.replaceChildren.apply(V.customer, parts);
  }

  // ---- Live updates.

  function stopLive() {
    if (S.ws) { S.ws.onclose = null; try { S.ws.close(); } catch (e) { /* closed */ } }
    S.ws = null;
    S.live = false;
  }

  function connect() {
    if (!S.me || S.ws) return;
    var url = location.origin.replace(/^http/, "ws") + "/api/v1/agent/events?after=" + (S.lastSeq || 0);
    var ws;
    try {
      ws = new WebSocket(url, ["bearer", "bearer." + tokens.get()]);
    } catch (e) {
      return;
    }
    S.ws = ws;
    var opened = false;
    ws.onopen = function () {
      opened = true;
      S.wsFailures = 0;
      S.live = true;
      renderLive();
      // Whatever happened while the socket was down is replayed from `after`; lists are
      // refreshed too, since queue positions move without events of our own.
      refreshQueue();
      refreshMe();
    };
    ws.onmessage = function (e) {
      var ev;
      try { ev = JSON.parse(e.data); } catch (x) { return; }
      onEvent(ev);
    };
    ws.onclose = function () {
      S.ws = null;
      S.live = false;
      renderLive();
      if (!tokens.get()) return;
      if (!opened) S.wsFailures++;
      var delay = Math.min(30000, 500 * Math.pow(2, Math.min(S.wsFailures, 6))) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  function onEvent(ev) {
    if (typeof ev.seq === "number" && !ev.ephemeral) {
      if (ev.seq <= S.lastSeq) return;
      S.lastSeq = ev.seq;
    }
    var d = ev.data || {};
    var id = ev.conversation_id;
    var current = id && id === S.currentId;
    switch (ev.type) {
      case "message_added": {
        var m = d.message;
        if (!m) break;
        if (current) {
          addMessage(m);
          // A new shopper message brings new suggestions.
          if (m.author === "shopper") reloadCurrent();
        } else if (m.author === "shopper") {
          S.unread[id] = true;
          renderMine();
        }
        var held = S.held.filter(function (h) { return h.conversation_id === id; })[0];
        if (m.author === "shopper" && held) {
          alertAgent("message", T.notifyMessage(held.customer_name || held.customer_id) + ": " + m.text);
        }
        break;
      }
      case "queue_changed":
        scheduleQueue();
        break;
      case "assigned":
      case "state_changed":
      case "csat_received":
      case "csat_requested":
        scheduleQueue();
        refreshMe();
        if (current) reloadCurrent();
        break;
    }
  }

  // ---- Keyboard shortcuts (shown in the UI): Alt+N, Alt+1..3, Alt+R; Ctrl+Enter in the box.

  document.addEventListener("keydown", function (e) {
    if (!S.me || !e.altKey || e.ctrlKey || e.metaKey) return;
    // The physical key (`code`) keeps Alt+letter working on layouts where Alt changes the
    // character; `key` covers drivers that send no code.
    var k = (e.key || "").toLowerCase();
    var digit = /^Digit[1-3]$/.test(e.code) ? Number(e.code.slice(5)) : (/^[1-3]$/.test(k) ? Number(k) : 0);
    if (e.code === "KeyN" || k === "n") { e.preventDefault(); claimNext(); }
    else if (e.code === "KeyR" || k === "r") { e.preventDefault(); resolve(); }
    else if (digit) { e.preventDefault(); useSuggestion(digit - 1); }
  });
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  // ---- Start: a token saved in this tab signs in again after a reload.

  document.documentElement.lang = lang;
  if (tokens.get()) {
    start().then(function (err) {
      if (err) { tokens.clear(); showSignIn(typeof err === "string" ? err : T.badToken); }
    });
  } else {
    showSignIn();
  }
})();
