/*! Switchboard console: helpers shared by the agent console and the admin view. Plain
 * JavaScript, no dependencies. Server text only ever enters the page as text nodes.
 */
(function () {
  "use strict";

  var STRINGS = {
    en: {
      product: "Switchboard",
      consoleTitle: "Agent console",
      adminTitle: "Admin view",
      language: "Language",
      signIn: "Sign in",
      signOut: "Sign out",
      tokenLabel: "Agent token",
      adminTokenLabel: "Admin token",
      tokenHelp: "Paste the token you were given when your agent account was created. It stays in this tab only.",
      adminTokenHelp: "The service's admin token. It stays in this tab only.",
      badToken: "This token was not recognised.",
      adminTokenHere: "That is the admin token: open the admin view instead.",
      notAdmin: "That is not the admin token.",
      openAdmin: "Open the admin view",
      openConsole: "Open the agent console",
      network: "The service cannot be reached. Retrying…",
      live: "Live",
      reconnecting: "Reconnecting…",
      queue: "Queue",
      queueEmpty: "Nobody is waiting. New conversations appear here.",
      claimNext: "Claim next",
      claim: "Claim",
      claimThis: "Claim this conversation",
      open: "Open",
      mine: "My conversations",
      mineEmpty: "You hold no conversation.",
      dueIn: function (t) { return "due in " + t; },
      overdue: function (t) { return "overdue " + t; },
      waited: function (t) { return "waiting " + t; },
      position: function (n) { return "#" + n; },
      intent: "Intent",
      reason: "Reason",
      tier: "Tier",
      ltv: "Lifetime value",
      orders: "orders",
      complaints: function (n) { return n === 1 ? "1 complaint" : n + " complaints"; },
      noComplaints: "no complaints",
      anonymous: "Anonymous shopper",
      unverified: "unverified",
      pickConversation: "Claim the next conversation or open one from the lists.",
      transcript: "Transcript",
      shopper: "Shopper",
      bot: "Bot",
      agent: "Agent",
      system: "System",
      note: "Private note",
      confidence: function (p) { return p + "% sure"; },
      outOfScope: "out of scope",
      suggestions: "Suggested replies",
      noSuggestions: "No suggestion from the knowledge base.",
      useSuggestion: "Put this suggestion in the reply box",
      replyLabel: "Reply to the shopper",
      noteLabel: "Private note (agents only)",
      replyMode: "Reply",
      noteMode: "Note",
      send: "Send",
      addNote: "Add note",
      readOnlyHeld: function (who) { return "Read only: " + who + " holds this conversation."; },
      readOnlyWaiting: "Read only: this conversation is waiting in the queue. Claim it to reply.",
      readOnlyState: function (s) { return "Read only: this conversation is " + s + "."; },
      states: { bot: "with the bot", waiting_for_human: "waiting for a person", with_human: "with an agent", resolved: "resolved" },
      actions: "Actions",
      transferTo: "Transfer to",
      transfer: "Transfer",
      agentsGroup: "Agents",
      teamsGroup: "Teams",
      handBack: "Hand back to bot",
      resolveCode: "Resolution",
      resolve: "Resolve",
      tiers: { vip: "VIP", gold: "Gold", silver: "Silver", standard: "Standard", regular: "Regular" },
      orderStatus: { placed: "placed", paid: "paid", shipped: "shipped", in_transit: "in transit", out_for_delivery: "out for delivery", delivered: "delivered", cancelled: "cancelled", returned: "returned" },
      codes: { answered: "Answered", refund_issued: "Refund issued", replacement_sent: "Replacement sent", order_updated: "Order updated", no_response: "No response", other: "Other" },
      customer: "Customer",
      recentOrders: "Recent orders",
      noOrders: "No orders.",
      ticket: "Ticket",
      team: "Team",
      slaDue: "First answer due",
      priority: "Priority",
      signals: "Signals",
      rating: "Rating",
      ratingPending: "not rated yet",
      resolvedAs: function (c) { return "Resolved: " + c; },
      shortcuts: "Keyboard shortcuts",
      keys: [
        ["Alt+N", "claim next"],
        ["Alt+1…3", "use a suggestion"],
        ["Ctrl+Enter", "send"],
        ["Alt+R", "resolve"],
      ],
      sound: "Sound",
      notifyNew: "New conversation waiting",
      notifyMessage: function (who) { return "New message from " + who; },
      announceQueue: function (n) { return n === 1 ? "1 conversation waiting" : n + " conversations waiting"; },
      claimed: "Conversation claimed.",
      sent: "Sent.",
      noted: "Note added.",
      transferred: "Transferred.",
      handedBack: "Handed back to the bot.",
      resolved: "Resolved. The shopper is asked for a rating.",
      nothingToClaim: "Nothing is waiting for you.",
      atCapacity: "You hold as many conversations as you may.",
      taken: "Another agent took it first.",
      failed: function (m) { return "That did not work: " + m; },
      load: function (l, c) { return l + " of " + c; },
      attachment: "Photo",
      // Admin view.
      agents: "Agents",
      queueHealth: "Queue health",
      waiting: "Waiting",
      overdueNow: "Past deadline now",
      breachesToday: "SLA breaches today",
      answeredToday: "First answers today",
      onTime: function (p) { return p + "% on time"; },
      agentsOnline: "Agents online",
      oldestWait: "Oldest wait",
      overdueCol: "Past deadline",
      name: "Name",
      status: "Status",
      loadCol: "Load",
      teams: "Teams",
      languages: "Languages",
      lastSeen: "Last seen",
      never: "never",
      ago: function (s) {
        if (s < 60) return Math.floor(s) + " s ago";
        if (s < 3600) return Math.floor(s / 60) + " min ago";
        return Math.floor(s / 3600) + " h ago";
      },
      statusNames: { online: "online", away: "away", offline: "offline" },
      stale: "online, not connected",
      updated: function (t) { return "Updated " + t; },
      none: "—",
      noAgents: "No agents yet. Create them with POST /api/v1/agents.",
    },
    zh: {
      product: "Switchboard",
      consoleTitle: "客服工作台",
      adminTitle: "管理视图",
      language: "语言",
      signIn: "登录",
      signOut: "退出",
      tokenLabel: "客服令牌",
      adminTokenLabel: "管理员令牌",
      tokenHelp: "粘贴创建客服账号时获得的令牌。令牌只保存在当前标签页中。",
      adminTokenHelp: "服务的管理员令牌，只保存在当前标签页中。",
      badToken: "无法识别该令牌。",
      adminTokenHere: "这是管理员令牌，请打开管理视图。",
      notAdmin: "这不是管理员令牌。",
      openAdmin: "打开管理视图",
      openConsole: "打开客服工作台",
      network: "无法连接服务，正在重试…",
      live: "实时",
      reconnecting: "正在重新连接…",
      queue: "排队",
      queueEmpty: "暂无等待的顾客，新会话会显示在这里。",
      claimNext: "接入下一位",
      claim: "接入",
      claimThis: "接入此会话",
      open: "查看",
      mine: "我的会话",
      mineEmpty: "您当前没有会话。",
      dueIn: function (t) { return "剩余 " + t; },
      overdue: function (t) { return "已超时 " + t; },
      waited: function (t) { return "已等待 " + t; },
      position: function (n) { return "第 " + n + " 位"; },
      intent: "意图",
      reason: "原因",
      tier: "等级",
      ltv: "累计消费",
      orders: "笔订单",
      complaints: function (n) { return n + " 次投诉"; },
      noComplaints: "无投诉",
      anonymous: "匿名顾客",
      unverified: "未验证",
      pickConversation: "接入下一位顾客，或从左侧列表打开会话。",
      transcript: "聊天记录",
      shopper: "顾客",
      bot: "机器人",
      agent: "客服",
      system: "系统",
      note: "内部备注",
      confidence: function (p) { return "置信度 " + p + "%"; },
      outOfScope: "超出范围",
      suggestions: "推荐回复",
      noSuggestions: "知识库中没有推荐回复。",
      useSuggestion: "将此推荐放入回复框",
      replyLabel: "回复顾客",
      noteLabel: "内部备注（仅客服可见）",
      replyMode: "回复",
      noteMode: "备注",
      send: "发送",
      addNote: "添加备注",
      readOnlyHeld: function (who) { return "只读：此会话由 " + who + " 处理。"; },
      readOnlyWaiting: "只读：此会话正在排队，接入后才能回复。",
      readOnlyState: function (s) { return "只读：此会话" + s + "。"; },
      states: { bot: "由机器人处理", waiting_for_human: "正在等待人工", with_human: "由客服处理", resolved: "已解决" },
      actions: "操作",
      transferTo: "转接给",
      transfer: "转接",
      agentsGroup: "客服",
      teamsGroup: "团队",
      handBack: "交还机器人",
      resolveCode: "解决方式",
      resolve: "解决",
      tiers: { vip: "VIP", gold: "金卡", silver: "银卡", standard: "普通", regular: "普通" },
      orderStatus: { placed: "已下单", paid: "已付款", shipped: "已发货", in_transit: "运输中", out_for_delivery: "派送中", delivered: "已签收", cancelled: "已取消", returned: "已退货" },
      codes: { answered: "已解答", refund_issued: "已退款", replacement_sent: "已补发", order_updated: "已修改订单", no_response: "顾客未回复", other: "其他" },
      customer: "顾客",
      recentOrders: "最近订单",
      noOrders: "没有订单。",
      ticket: "工单",
      team: "团队",
      slaDue: "首次回复期限",
      priority: "优先级",
      signals: "风险信号",
      rating: "评分",
      ratingPending: "尚未评分",
      resolvedAs: function (c) { return "已解决：" + c; },
      shortcuts: "快捷键",
      keys: [
        ["Alt+N", "接入下一位"],
        ["Alt+1…3", "使用推荐回复"],
        ["Ctrl+Enter", "发送"],
        ["Alt+R", "解决"],
      ],
      sound: "提示音",
      notifyNew: "有新的顾客在等待",
      notifyMessage: function (who) { return who + " 发来新消息"; },
      announceQueue: function (n) { return n + " 位顾客在等待"; },
      claimed: "已接入会话。",
      sent: "已发送。",
      noted: "已添加备注。",
      transferred: "已转接。",
      handedBack: "已交还机器人。",
      resolved: "已解决，已邀请顾客评分。",
      nothingToClaim: "目前没有等待您的顾客。",
      atCapacity: "您的会话数已达上限。",
      taken: "其他客服已先接入。",
      failed: function (m) { return "操作失败：" + m; },
      load: function (l, c) { return l + " / " + c; },
      attachment: "图片",
      agents: "客服",
      queueHealth: "队列状况",
      waiting: "等待中",
      overdueNow: "当前已超时",
      breachesToday: "今日 SLA 超时",
      answeredToday: "今日首次回复",
      onTime: function (p) { return p + "% 按时"; },
      agentsOnline: "在线客服",
      oldestWait: "最长等待",
      overdueCol: "已超时",
      name: "姓名",
      status: "状态",
      loadCol: "负载",
      teams: "团队",
      languages: "语言",
      lastSeen: "最近活动",
      never: "从未",
      ago: function (s) {
        if (s < 60) return Math.floor(s) + " 秒前";
        if (s < 3600) return Math.floor(s / 60) + " 分钟前";
        return Math.floor(s / 3600) + " 小时前";
      },
      statusNames: { online: "在线", away: "离开", offline: "离线" },
      stale: "在线，未连接",
      updated: function (t) { return "更新于 " + t; },
      none: "—",
      noAgents: "还没有客服，请用 POST /api/v1/agents 创建。",
    },
  };

  var LANG_KEY = "switchboard-console:lang";

  /** The UI language: `?lang=`, then the saved choice, then the browser's languages. */
  function pickLang() {
    var q = new URLSearchParams(location.search).get("lang");
    if (q && STRINGS[q.slice(0, 2)]) return q.slice(0, 2);
    try {
      var saved = localStorage.getItem(LANG_KEY);
      if (saved && STRINGS[saved]) return saved;
    } catch (e) { /* storage blocked */ }
    var langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < langs.length; i++) {
      var l = String(langs[i]).toLowerCase().slice(0, 2);
      if (STRINGS[l]) return l;
    }
    return "en";
  }

  function saveLang(l) {
    try { localStorage.setItem(LANG_KEY, l); } catch (e) { /* storage blocked */ }
  }

  /** An element with attributes (`text` sets its text, `on` its listeners) and children. */
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "on") for (var ev in v) e.addEventListener(ev, v[ev]);
      else if (k === "props") for (var p in v) e[p] = v[p];
      else e.setAttribute(k, v === true ? "" : v);
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  /** Replaces a node's children with `children`, skipping empty ones. */
  function put(node, children) {
    node.replaceChildren.apply(node, children.filter(function (c) { return c !== null && c !== undefined && c !== false; }));
  }

  /** Text with line breaks kept (CSS `pre-wrap`) and http(s) links as checked anchors. */
  function richText(text) {
    var frag = document.createDocumentFragment();
    var re = /\bhttps?:\/\/[^\s<>"'）)]+[^\s<>"'）).,;:!?，。！？]/g;
    var last = 0, m;
    text = String(text || "");
    while ((m = re.exec(text))) {
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = document.createElement("a");
      a.textContent = m[0];
      try {
        var u = new URL(m[0]);
        if (u.protocol === "http:" || u.protocol === "https:") a.href = u.href;
      } catch (e) { /* left as text */ }
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      frag.appendChild(a);
      last = m.index + m[0].length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  /** `m:ss`, or `h:mm:ss` from an hour on. */
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  /** Minor currency units as major units with grouping (the shop's currency is not named). */
  function money(cents, lang, currency) {
    var major = (Number(cents) || 0) / 100;
    var opts = currency ? { style: "currency", currency: currency } : { maximumFractionDigits: 0 };
    try {
      return new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-US", opts).format(major);
    } catch (e) {
      return String(Math.round(major));
    }
  }

  function time(iso, lang) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return d.toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  function dateTime(iso, lang) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  /** A JSON API client with the bearer token; errors carry the status and server message. */
  function client(getToken, extraHeaders) {
    return async function api(method, path, body) {
      var headers = { Authorization: "Bearer " + getToken() };
      if (extraHeaders) for (var h in extraHeaders) headers[h] = extraHeaders[h];
      var init = { method: method, headers: headers };
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      var r;
      try {
        r = await fetch(path, init);
      } catch (e) {
        var ne = new Error("network");
        ne.status = 0;
        throw ne;
      }
      if (r.status === 204) return null;
      var data = null;
      try { data = await r.json(); } catch (e) { /* no body */ }
      if (!r.ok) {
        var err = new Error((data && data.message) || ("HTTP " + r.status));
        err.status = r.status;
        err.code = data && data.error;
        throw err;
      }
      return data;
    };
  }

  /** Session-scoped token storage (a tab's token is gone when the tab closes). */
  function tokenStore(key) {
    return {
      get: function () { try { return sessionStorage.getItem(key) || ""; } catch (e) { return ""; } },
      set: function (t) { try { sessionStorage.setItem(key, t); } catch (e) { /* blocked */ } },
      clear: function () { try { sessionStorage.removeItem(key); } catch (e) { /* blocked */ } },
    };
  }

  /** The header's language switcher. */
  function langSwitch(T, lang, onChange) {
    var id = "lang-" + Math.random().toString(36).slice(2, 8);
    var sel = el("select", { id: id, class: "lang", on: { change: function () { saveLang(sel.value); onChange(sel.value); } } }, [
      el("option", { value: "en", text: "English" }),
      el("option", { value: "zh", text: "中文" }),
    ]);
    sel.value = lang;
    return el("span", { class: "lang-switch" }, [el("label", { for: id, text: T.language }), sel]);
  }

  /** The sign-in form; `submit(token)` resolves to an error message or nothing. */
  function signInForm(T, label, help, submit, extra) {
    var input = el("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "token-help token-error" });
    var error = el("p", { id: "token-error", class: "error", role: "alert" });
    var button = el("button", { type: "submit", class: "primary", text: T.signIn });
    var form = el("form", { class: "signin card", on: { submit: async function (e) {
      e.preventDefault();
      error.textContent = "";
      var t = input.value.trim();
      if (!t) { input.focus(); return; }
      button.disabled = true;
      var msg = await submit(t);
      button.disabled = false;
      if (msg) { error.replaceChildren(msg); input.focus(); }
    } } }, [
      el("h1", { text: T.product }),
      el("label", { for: "token", text: label }),
      input,
      el("p", { id: "token-help", class: "help", text: help }),
      error,
      button,
      extra,
    ]);
    setTimeout(function () { input.focus(); }, 0);
    return form;
  }

  window.SwitchboardConsole = {
    STRINGS: STRINGS,
    pickLang: pickLang,
    saveLang: saveLang,
    el: el,
    put: put,
    richText: richText,
    duration: duration,
    money: money,
    time: time,
    dateTime: dateTime,
    client: client,
    tokenStore: tokenStore,
    langSwitch: langSwitch,
    signInForm: signInForm,
  };
})();
