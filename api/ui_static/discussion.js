/* /ui/discussions/{id}: the live transcript over the WebSocket stream, posting, votes, moderation.

   Continuity: every stream event carries its Redis Stream id; the page remembers the last one and
   reconnects with ?last_event_id= so the server replays exactly what was missed. Events at or
   before the remembered id are dropped, and messages are keyed by their `seq`, so a replay or a
   REST refresh never shows a message twice; a hole in `seq` is filled from the REST transcript. */
"use strict";

(() => {
  const { api, el, when, wsUrl } = UI;
  const did = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const TERMINAL = new Set(["completed", "cancelled", "failed"]);
  const STATUS_FIELDS = ["stop_reason", "outcome", "error", "wait_deadline", "deadline"];
  const $ = (id) => document.getElementById(id);

  const st = {
    session: null,
    people: new Map(), // participant_id -> participant
    lastEventId: null,
    ws: null,
    retry: 0,
    holdUntil: 0,
    urls: [],
    stopped: false,
    speaking: null,
    actions: [],
    resyncs: 0,
  };

  // ------------------------------------------------------------------ rendering

  function cmpId(a, b) {
    const [a1, a2] = String(a).split("-").map(Number);
    const [b1, b2] = String(b).split("-").map(Number);
    return a1 - b1 || a2 - b2;
  }

  function setConn(text, cls) {
    const c = $("conn");
    c.textContent = text;
    c.className = `conn ${cls || ""}`;
  }

  function person(pid) { return st.people.get(pid); }
  function kindLabel(type) { return type === "human" ? "person" : "agent"; }

  function renderSession(session) {
    st.session = { ...(st.session || {}), ...session };
    for (const p of session.participants || []) st.people.set(p.participant_id, p);
    document.title = `${st.session.topic} · Discussion Orchestrator`;
    $("topic").textContent = st.session.topic;
    $("protocol").textContent = st.session.protocol;
    $("pcount").textContent = st.people.size;
    $("participants").replaceChildren(...[...st.people.values()].map((p) =>
      el("li", {},
        el("strong", { text: p.name }), " ",
        el("span", { class: `kind kind-${kindLabel(p.participant_type)}`, text: kindLabel(p.participant_type) }),
        p.role ? el("span", { class: "role", text: ` ${p.role}` }) : null,
        p.participant_type === "human"
          ? el("span", { class: "perms", text: ` (${(p.permissions || []).join(", ")})` }) : null)));
    for (const m of session.messages || []) addMessage(m, false);
    renderState();
    renderPostForm();
    renderActions();
    ensureContiguous();
  }

  function renderState() {
    const s = st.session;
    if (!s) return;
    const status = $("status");
    status.textContent = s.status.replaceAll("_", " ");
    status.className = `badge status-${s.status}`;
    $("round").textContent = `${s.current_round || 0} of ${s.max_rounds}`;
    $("count").textContent = tr.nodes.size;
    const waiting = s.status === "waiting_for_human" && s.waiting_for;
    $("waiting-box").hidden = !waiting;
    if (waiting) {
      const p = person(s.waiting_for);
      const until = s.wait_deadline || s.deadline;
      // The deadline in the viewer's local time, with a live countdown.
      $("waiting").replaceChildren(
        (p ? `${p.name} (${kindLabel(p.participant_type)})` : s.waiting_for) +
          (until ? ` until ${when(until)} ` : ""),
        ...(until ? [el("span", { class: "countdown", "data-until": until,
                                  text: UI.countdown(until) })] : []));
    }
    const speaking = !TERMINAL.has(s.status) && !waiting && st.speaking;
    $("speaking-box").hidden = !speaking;
    if (speaking) $("speaking").textContent = `${st.speaking}…`;
    const box = $("outcome");
    const ended = TERMINAL.has(s.status);
    box.hidden = !ended && !s.outcome;
    if (!box.hidden) {
      const parts = [];
      if (ended) parts.push(`Ended: ${s.status}` + (s.stop_reason ? ` (${s.stop_reason.replaceAll("_", " ")})` : ""));
      if (s.error) parts.push(`Error: ${s.error}`);
      if (s.outcome) parts.push(`Outcome: ${describeOutcome(s.outcome)}`);
      box.replaceChildren(...parts.map((t) => el("p", { text: t })));
    }
    updateTurnHint();
  }

  function describeOutcome(outcome) {
    if (typeof outcome !== "object" || outcome === null) return String(outcome);
    return Object.entries(outcome).map(([k, v]) =>
      `${k.replaceAll("_", " ")}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
  }

  const tr = Transcript.create({
    list: $("transcript"), did, person, kindLabel,
    onAdded: (m) => {
      if (!st.session) return;
      st.session.message_count = Math.max(st.session.message_count || 0, m.seq);
      if (m.round) st.session.current_round = Math.max(st.session.current_round || 0, m.round);
    },
    onFilled: () => renderState(),
  });
  const addMessage = tr.add;
  const note = tr.note;
  const ensureContiguous = tr.fill;
  Object.defineProperty(st, "deltas", { get: () => tr.deltas });

  // ------------------------------------------------------------------ the stream

  function handle(frame) {
    switch (frame.type) {
      case "pong": return;
      case "error": console.warn("stream error", frame.data); return;
      case "resync_required": resync(); return;
      case "init":
        st.lastEventId = frame.id || frame.data.last_event_id;
        renderSession({ ...frame.data.session, messages: frame.data.messages });
        return;
      default: break;
    }
    if (frame.id) {
      if (st.lastEventId && cmpId(frame.id, st.lastEventId) <= 0) return; // seen already
      st.lastEventId = frame.id;
    }
    const d = frame.data || {};
    const s = st.session;
    switch (frame.type) {
      case "message":
        if (d.participant_name === st.speaking) st.speaking = null;
        addMessage(d);
        break;
      case "message_delta":
        tr.delta(d);
        break;
      case "turn_started":
        st.speaking = d.participant_name || d.participant_id;
        if (s && d.round) s.current_round = Math.max(s.current_round || 0, d.round);
        break;
      case "turn_failed":
        st.speaking = null;
        note(`${(person(d.participant_id) || {}).name || d.participant_id} could not answer: ${d.error}`);
        break;
      case "status":
        if (!s) break;
        s.status = d.status;
        if ("waiting_for" in d) s.waiting_for = d.waiting_for || null;
        else if (d.status !== "waiting_for_human") s.waiting_for = null;
        if (d.status !== "waiting_for_human") s.wait_deadline = s.deadline = null;
        for (const k of STATUS_FIELDS) if (k in d) s[k] = d[k];
        if (d.status !== "active") st.speaking = null;
        renderPostForm();
        renderActions();
        break;
      case "outcome":
        if (s) s.outcome = d.outcome || d;
        break;
      case "vote":
        note(`${(person(d.participant_id) || {}).name || d.participant_id || "someone"} voted` +
             (d.choice || d.vote ? `: ${d.choice || d.vote}` : ""));
        break;
      case "held":
        note(`A post by ${(person(d.participant_id) || {}).name || d.participant_id} is held for a moderator's approval.`);
        Actions.refreshHeld(did);
        break;
      case "moderation": {
        const name = (pid) => (person(pid) || {}).name || pid;
        note([`Moderation: ${d.action || "action"}`, d.participant_id && `for ${name(d.participant_id)}`,
              d.by && `by ${name(d.by)}`, d.reason && `(${d.reason})`].filter(Boolean).join(" "));
        Actions.refreshHeld(did);
        break;
      }
      default:
        break;
    }
    renderState();
    if (s && TERMINAL.has(s.status)) setConn("finished", "done");
  }

  function connect() {
    if (st.stopped) return;
    const url = wsUrl(`/v1/discussions/${encodeURIComponent(did)}/stream`,
                      { last_event_id: st.lastEventId });
    st.urls.push(url.replace(/([?&]access_token=)[^&]*/, "$1…"));
    setConn(st.lastEventId ? "reconnecting…" : "connecting…", "wait");
    const ws = new WebSocket(url);
    st.ws = ws;
    ws.onopen = () => {
      st.retry = 0;
      setConn(st.session && TERMINAL.has(st.session.status) ? "finished" : "live", "live");
    };
    ws.onmessage = (e) => {
      let frame;
      try { frame = JSON.parse(e.data); } catch (err) { return; }
      handle(frame);
    };
    ws.onclose = (ev) => {
      if (st.ws !== ws) return;
      st.ws = null;
      if (ev.code === 4404 || ev.code === 4410) return stop(ev.code === 4404 ? "discussion not found" : "discussion deleted");
      if (ev.code === 4401 || ev.code === 4403) {
        document.querySelector("details.settings").open = true;
        return stop(`not allowed: ${ev.reason || ev.code}`);
      }
      if (ev.code === 4429) st.retry = 5; // over the socket or frame limit: back off fully
      const delay = Math.max(Math.min(5000, 250 * 2 ** st.retry), st.holdUntil - Date.now());
      st.retry = Math.min(st.retry + 1, 5);
      setConn(`offline; retrying in ${Math.ceil(delay / 1000)} s`, "off");
      setTimeout(connect, delay);
    };
  }

  function stop(reason) {
    st.stopped = true;
    setConn(reason, "off");
  }

  async function resync() {
    st.resyncs += 1;
    try {
      renderSession(await api(`/v1/discussions/${encodeURIComponent(did)}`));
    } catch (err) {
      console.warn("resync failed", err);
    }
  }

  // Keeps idle connections open through proxies that drop silent sockets.
  setInterval(() => {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) st.ws.send('{"type":"ping"}');
  }, 20000);

  const compose = Compose.create({
    did, st, person, addMessage, renderState: () => renderState(),
    onActorChange: () => renderActions(),
  });
  const renderPostForm = compose.render;
  const updateTurnHint = compose.hint;
  const acting = compose.acting;

  // ------------------------------------------------------------------ votes and moderation

  async function loadActions() {
    st.actions = await Actions.discover(did, () => st.session);
    renderActions();
  }

  function renderActions() {
    if (!st.session) return;
    const me = acting();
    Actions.render({
      actions: st.actions, session: st.session, me, people: st.people, did,
      voteBox: $("vote-actions"), voteSection: $("vote-section"),
      modBox: $("mod-actions"), modSection: $("mod-section"),
      voteStatus: $("vote-status"), modStatus: $("mod-status"),
      onDone: (result) => { if (result && typeof result.seq === "number") addMessage(result); },
    });
  }

  // ------------------------------------------------------------------ start

  // Test and debugging hooks: drop the socket (and hold off reconnecting for holdMs).
  window.viewer = {
    state: st,
    drop(holdMs = 0) { st.holdUntil = Date.now() + holdMs; if (st.ws) st.ws.close(); },
    seqs: () => tr.seqs(),
  };

  (async () => {
    try {
      renderSession(await api(`/v1/discussions/${encodeURIComponent(did)}`));
    } catch (err) {
      if (err.status === 404) { $("topic").textContent = "Discussion not found"; stop("not found"); return; }
      if (err.status === 401) {
        $("topic").textContent = "This service needs an access token";
        document.querySelector("details.settings").open = true;
        $("token").focus();
        stop("no access");
        return;
      }
      $("topic").textContent = `Could not load the discussion: ${err.message}`;
    }
    loadActions().catch((err) => console.warn("no actions", err));
    connect();
  })();
})();
