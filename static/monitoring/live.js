// Live events page: one websocket to /ws/events/, newest rows first, bounded, reconnecting.
// Everything is written with textContent: event fields never become HTML.
(function () {
  "use strict";

  const root = document.getElementById("live");
  const rowsKept = parseInt(root.dataset.rowsKept, 10) || 500;
  const tbody = document.getElementById("rows");
  const empty = document.getElementById("empty");
  const stateBadge = document.getElementById("conn-state");
  const rateOut = document.getElementById("rate");
  const droppedOut = document.getElementById("dropped");
  const pauseButton = document.getElementById("pause");
  const form = document.getElementById("filters");

  const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const FINAL_CLOSES = {
    4400: "closed: invalid filter",
    4401: "closed: signed out, log in again",
    4403: "closed: staff only",
  };

  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let paused = false;
  let pending = [];
  let droppedTotal = 0;
  const perSecond = [0];

  function setState(name, text) {
    stateBadge.className = "conn conn-" + name;
    stateBadge.textContent = text;
    stateBadge.dataset.state = name;
  }

  function currentFilters() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const name of ["type", "kind", "tenant"]) {
      const value = (data.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    return params;
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = currentFilters().toString();
    return scheme + "//" + location.host + root.dataset.socketPath + (query ? "?" + query : "");
  }

  function connect() {
    retryTimer = null;
    setState(attempt ? "reconnecting" : "connecting", attempt ? "reconnecting…" : "connecting…");
    const ws = new WebSocket(socketUrl());
    socket = ws;
    ws.onmessage = function (message) {
      if (ws === socket) handleFrame(JSON.parse(message.data));
    };
    ws.onclose = function (close) {
      if (ws !== socket) return; // replaced on purpose (filters changed)
      socket = null;
      if (FINAL_CLOSES[close.code]) {
        setState("closed", FINAL_CLOSES[close.code]);
        return;
      }
      const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
      const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
      attempt += 1;
      setState("reconnecting", "disconnected, retrying in " + Math.ceil(jittered / 1000) + " s");
      retryTimer = setTimeout(connect, jittered);
    };
  }

  function reconnectNow() {
    if (retryTimer) clearTimeout(retryTimer);
    const old = socket;
    socket = null;
    if (old) old.close(1000);
    attempt = 0;
    connect();
  }

  function handleFrame(frame) {
    if (frame.type === "hello") {
      attempt = 0;
      setState("connecting", "subscribing…");
    } else if (frame.type === "state") {
      if (frame.state === "live") setState("live", "live");
      else setState("degraded", "connected, Redis unavailable");
    } else if (frame.type === "events") {
      if (frame.dropped) {
        droppedTotal += frame.dropped;
        droppedOut.hidden = false;
        droppedOut.textContent = droppedTotal + " events dropped (this page fell behind)";
      }
      perSecond[perSecond.length - 1] += frame.events.length;
      if (paused) {
        pending = pending.concat(frame.events).slice(-rowsKept);
        pauseButton.textContent = "Resume (" + pending.length + " new)";
      } else {
        render(frame.events);
      }
    }
  }

  function render(events) {
    if (!events.length) return;
    const fragment = document.createDocumentFragment();
    for (let i = events.length - 1; i >= 0; i--) fragment.appendChild(row(events[i]));
    tbody.insertBefore(fragment, tbody.firstChild);
    while (tbody.rows.length > rowsKept) tbody.deleteRow(-1);
    empty.hidden = true;
  }

  function cell(tr, text, className, title) {
    const td = tr.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    if (title) td.title = title;
    return td;
  }

  function row(event) {
    const tr = document.createElement("tr");
    tr.className = "fresh";
    tr.dataset.eventId = event.event_id || "";
    tr.dataset.type = event.event_type || "";
    const when = event.timestamp ? new Date(event.timestamp) : null;
    cell(tr, when && !isNaN(when) ? formatTime(when) : "", "mono", event.timestamp || "");
    const badge = document.createElement("span");
    badge.className = "type type-" + (event.event_type || "unknown");
    badge.textContent = event.event_type || "?";
    tr.insertCell().appendChild(badge);
    cell(tr, event.source || "");
    cell(tr, event.tenant || "");
    cell(tr, event.request_id || "", "mono");
    cell(tr, describe(event));
    cell(tr, typeof event.duration_ms === "number" ? event.duration_ms.toFixed(1) + " ms" : "");
    return tr;
  }

  function describe(event) {
    if (event.event_type === "alert") return [event.alert, event.level, event.message].filter(Boolean).join(": ");
    const counts = event.counts_by_kind || {};
    const parts = Object.keys(counts).sort().map(function (kind) {
      return kind + " ×" + counts[kind];
    });
    if (event.unresolved) parts.push(event.unresolved + " unresolved");
    return parts.join(", ") || "none";
  }

  function pad(n, width) {
    return String(n).padStart(width, "0");
  }

  function formatTime(date) {
    return (
      pad(date.getHours(), 2) + ":" + pad(date.getMinutes(), 2) + ":" +
      pad(date.getSeconds(), 2) + "." + pad(date.getMilliseconds(), 3)
    );
  }

  // Events per second over the last 5 seconds.
  setInterval(function () {
    const total = perSecond.reduce(function (a, b) { return a + b; }, 0);
    rateOut.textContent = (total / perSecond.length).toFixed(1);
    perSecond.push(0);
    if (perSecond.length > 5) perSecond.shift();
  }, 1000);

  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      render(pending);
      pending = [];
    }
  });

  document.getElementById("clear").addEventListener("click", function () {
    tbody.replaceChildren();
    pending = [];
    empty.hidden = false;
  });

  form.addEventListener("submit", function (submit) {
    submit.preventDefault();
    const query = currentFilters().toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
    // Rows already shown were not filtered; start clean so the table matches the filters.
    tbody.replaceChildren();
    pending = [];
    empty.hidden = false;
    reconnectNow();
  });

  // Filters from the page URL, so a reload or a shared link keeps them.
  const initial = new URLSearchParams(location.search);
  for (const name of ["type", "kind", "tenant"]) {
    if (initial.get(name) && form.elements[name]) form.elements[name].value = initial.get(name);
  }
  connect();
})();
