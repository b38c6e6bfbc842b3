/*! Switchboard admin view: agents (online or away, load against capacity) and queue health
 * (waiting per team, the oldest wait, SLA breaches today). Signs in with the admin token and
 * reads `/api/v1/agents` and `/api/v1/admin/queue-health` every few seconds.
 */
(function () {
  "use strict";

  var C = window.SwitchboardConsole;
  var el = C.el;
  var tokens = C.tokenStore("switchboard-console:admin-token");
  var api = C.client(tokens.get);
  var REFRESH_MS = 5000;

  var lang = C.pickLang();
  var T = C.STRINGS[lang];
  var V = {};
  var S = { agents: null, health: null, timer: null, error: null };

  function setLang(l) {
    lang = l;
    T = C.STRINGS[l];
    document.documentElement.lang = l;
  }

  function header(extra) {
    return el("header", { class: "topbar" }, [
      el("span", { class: "brand" }, [el("strong", { text: T.product }), " ", el("span", { text: T.adminTitle })]),
      el("span", { class: "spacer" }),
      extra,
      C.langSwitch(T, lang, function (l) { setLang(l); if (S.agents) buildShell(); else showSignIn(); }),
      S.agents ? el("button", { type: "button", class: "ghost", text: T.signOut, on: { click: signOut } }) : null,
    ]);
  }

  function showSignIn(message) {
    document.documentElement.lang = lang;
    document.title = T.product + " · " + T.adminTitle;
    var form = C.signInForm(T, T.adminTokenLabel, T.adminTokenHelp, async function (token) {
      tokens.set(token);
      var err = await start();
      if (err) tokens.clear();
      return err;
    }, el("p", { class: "help" }, [el("a", { href: "/console", text: T.openConsole })]));
    document.getElementById("app").replaceChildren(header(null), el("main", { class: "signin-page" }, [form]));
    if (message) form.querySelector(".error").textContent = message;
  }

  async function load() {
    var both = await Promise.all([api("GET", "/api/v1/agents"), api("GET", "/api/v1/admin/queue-health")]);
    S.agents = both[0].items;
    S.health = both[1];
  }

  async function start() {
    try {
      await load();
    } catch (e) {
      S.agents = null;
      if (e.status === 401 || e.status === 403) return T.notAdmin;
      return T.failed(e.message);
    }
    buildShell();
    clearInterval(S.timer);
    S.timer = setInterval(refresh, REFRESH_MS);
    return null;
  }

  async function refresh() {
    try {
      await load();
      S.error = null;
    } catch (e) {
      if (e.status === 401 || e.status === 403) return signOut();
      S.error = e.status === 0 ? T.network : T.failed(e.message);
    }
    render();
  }

  function signOut() {
    clearInterval(S.timer);
    tokens.clear();
    S.agents = null;
    S.health = null;
    showSignIn();
  }

  function buildShell() {
    document.documentElement.lang = lang;
    document.title = T.product + " · " + T.adminTitle;
    V.updated = el("span", { class: "updated", role: "status" });
    V.tiles = el("ul", { class: "tiles", "aria-label": T.queueHealth });
    V.teams = el("tbody");
    V.agents = el("tbody");
    V.error = el("p", { class: "error", role: "alert" });
    var main = el("main", { class: "admin-main" }, [
      V.error,
      V.tiles,
      el("section", { class: "panel", "aria-labelledby": "teams-h" }, [
        el("h2", { id: "teams-h", text: T.queueHealth }),
        el("table", { class: "grid teams-table" }, [
          el("thead", {}, [el("tr", {}, [
            el("th", { scope: "col", text: T.team }),
            el("th", { scope: "col", class: "num", text: T.waiting }),
            el("th", { scope: "col", class: "num", text: T.oldestWait }),
            el("th", { scope: "col", class: "num", text: T.overdueCol }),
          ])]),
          V.teams,
        ]),
      ]),
      el("section", { class: "panel", "aria-labelledby": "agents-h" }, [
        el("h2", { id: "agents-h", text: T.agents }),
        el("table", { class: "grid agents-table" }, [
          el("thead", {}, [el("tr", {}, [
            el("th", { scope: "col", text: T.name }),
            el("th", { scope: "col", text: T.status }),
            el("th", { scope: "col", text: T.loadCol }),
            el("th", { scope: "col", text: T.teams }),
            el("th", { scope: "col", text: T.languages }),
            el("th", { scope: "col", text: T.lastSeen }),
          ])]),
          V.agents,
        ]),
      ]),
    ]);
    document.getElementById("app").replaceChildren(header(V.updated), main);
    render();
  }

  function tile(label, value, note, cls) {
    return el("li", { class: "tile " + (cls || "") }, [
      el("span", { class: "tile-label", text: label }),
      el("strong", { class: "tile-value", text: String(value) }),
      note ? el("span", { class: "tile-note", text: note }) : null,
    ]);
  }

  function render() {
    if (!V.tiles || !S.health) return;
    var h = S.health;
    var online = S.agents.filter(function (a) { return a.available; }).length;
    var onTime = h.answered_today ? Math.round(100 * (h.answered_today - h.breached_today) / h.answered_today) : null;
    V.error.textContent = S.error || "";
    V.error.hidden = !S.error;
    V.updated.textContent = T.updated(C.time(h.at, lang) + ":" + String(new Date(h.at).getSeconds()).padStart(2, "0"));
    V.tiles.replaceChildren(
      tile(T.waiting, h.waiting, null, h.waiting ? "" : "calm"),
      tile(T.overdueNow, h.overdue_now, null, h.overdue_now ? "red" : "calm"),
      tile(T.breachesToday, h.sla_breaches_today, null, h.sla_breaches_today ? "amber" : "calm"),
      tile(T.answeredToday, h.answered_today, onTime === null ? null : T.onTime(onTime)),
      tile(T.agentsOnline, online + " / " + S.agents.length),
    );
    V.teams.replaceChildren.apply(V.teams, h.teams.map(function (t) {
      var wait = t.oldest_wait_seconds;
      return el("tr", { "data-team": t.team, class: t.overdue ? "row-red" : "" }, [
        el("th", { scope: "row", text: t.team }),
        el("td", { class: "num waiting", text: String(t.waiting) }),
        el("td", { class: "num oldest", text: wait === null || wait === undefined ? T.none : C.duration(wait) }),
        el("td", { class: "num overdue", text: String(t.overdue) }),
      ]);
    }));
    if (!S.agents.length) {
      V.agents.replaceChildren(el("tr", {}, [el("td", { colspan: "6", class: "muted", text: T.noAgents })]));
      return;
    }
    V.agents.replaceChildren.apply(V.agents, S.agents.map(function (a) {
      // `available` means online and seen within the last minute (connected or active).
      var status = a.available ? "online" : (a.status === "online" ? "stale" : a.status);
      var statusText = status === "stale" ? T.stale : T.statusNames[status] || status;
      var pct = a.capacity ? Math.min(100, Math.round(100 * a.load / a.capacity)) : 0;
      var seen = a.last_seen_at ? T.ago(Math.max(0, (Date.now() - Date.parse(a.last_seen_at)) / 1000)) : T.never;
      return el("tr", { "data-agent": a.id }, [
        el("th", { scope: "row" }, [a.name, " ", el("span", { class: "muted", text: a.id })]),
        el("td", {}, [el("span", { class: "dot " + status, "aria-hidden": "true" }), el("span", { class: "agent-status", text: statusText })]),
        el("td", { class: "load" }, [
          el("meter", { min: "0", max: String(a.capacity), value: String(a.load), "aria-label": T.loadCol + " " + a.name }),
          el("span", { class: "load-text", text: T.load(a.load, a.capacity) }),
          el("span", { class: "sr-only", text: " (" + pct + "%)" }),
        ]),
        el("td", { text: (a.teams || []).join(", ") }),
        el("td", { text: (a.languages || []).join(", ").toUpperCase() }),
        el("td", { class: "muted", text: seen }),
      ]);
    }));
  }

  document.documentElement.lang = lang;
  if (tokens.get()) {
    start().then(function (err) { if (err) { tokens.clear(); showSignIn(err); } });
  } else {
    showSignIn();
  }
})();
