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
  const query = new URLSearchParams(location.search);

  const st = {
    session: null,
    people: new Map(), // participant_id -> participant
    lastEventId: null,
    nodes: new Map(), // seq -> <li>
    drafts: new Map(), // turn (or participant) -> streaming <li>
    ws: null,
    retry: 0,
    holdUntil: 0,
    urls: [],
    stopped: false,
    filling: false,
    speaking: null,
    actions: [],
    resyncs: 0,
    deltas: 0,
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
    $("count").textContent = st.nodes.size;
    const waiting = s.status === "waiting_for_human" && s.waiting_for;
    $("waiting-box").hidden = !waiting;
    if (waiting) {
      const p = person(s.waiting_for);
      const until = s.wait_deadline || s.deadline;
      $("waiting").textContent = (p ? `${p.name} (${kindLabel(p.participant_type)})` : s.waiting_for) +
        (until ? ` until ${when(until)}` : "");
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

  function messageNode(m, draft) {
    const p = person(m.participant_id);
    const kind = kindLabel(m.participant_type || (p && p.participant_type));
    const role = p && p.role;
    return el("li", { class: `msg msg-${kind}${draft ? " draft" : ""}`, "data-seq": m.seq,
                      "aria-busy": draft ? "true" : undefined },
      el("div", { class: "who" },
        el("strong", { text: m.participant_name || (p && p.name) || m.participant_id }), " ",
        el("span", { class: `kind kind-${kind}`, text: kind }),
        role ? el("span", { class: "role", text: ` ${role}` }) : null,
        el("span", { class: "when", text: draft ? " typing…" : ` #${m.seq} · ${when(m.timestamp)}` }),
        m.message_type && m.message_type !== "text"
          ? el("span", { class: "mtype", text: ` ${m.message_type}` }) : null),
      el("p", { class: "text", text: m.content }));
  }

  // Adds a committed message once (keyed by seq), in seq order; replaces its streaming draft.
  function addMessage(m, check = true) {
    if (!m || typeof m.seq !== "number" || st.nodes.has(m.seq)) return false;
    const node = messageNode(m, false);
    const list = $("transcript");
    let before = null;
    for (const [seq, li] of st.nodes) if (seq > m.seq && (!before || seq < Number(before.dataset.seq))) before = li;
    const draftKey = m.turn ?? null;
    const draft = draftKey !== null ? st.drafts.get(draftKey) : null;
    if (draft) {
      draft.replaceWith(node);
      st.drafts.delete(draftKey);
      if (before) list.insertBefore(node, before);
    } else if (before) {
      list.insertBefore(node, before);
    } else {
      const firstDraft = list.querySelector("li.draft");
      list.insertBefore(node, firstDraft);
    }
    st.nodes.set(m.seq, node);
    if (st.session) {
      st.session.message_count = Math.max(st.session.message_count || 0, m.seq);
      if (m.round) st.session.current_round = Math.max(st.session.current_round || 0, m.round);
    }
    if (check) ensureContiguous();
    return true;
  }

  function applyDelta(d) {
    const key = d.turn ?? d.participant_id;
    let li = st.drafts.get(key);
    if (!li) {
      li = messageNode({ seq: "", participant_id: d.participant_id,
                         participant_name: d.participant_name, content: "" }, true);
      st.drafts.set(key, li);
      $("transcript").append(li);
    }
    const text = li.querySelector(".text");
    st.deltas += 1;
    // A re-run of the turn streams again from index 0: start the draft over, never double it.
    if (d.index === 0) text.textContent = "";
    if (typeof d.delta === "string") text.textContent += d.delta;
    else if (typeof d.content === "string") text.textContent = d.content;
    else if (typeof d.text === "string") text.textContent = d.text;
  }

  function note(text) {
    $("transcript").append(el("li", { class: "note", text }));
  }

  // Fills any hole in 1..highest seq from the REST transcript.
  async function ensureContiguous() {
    if (st.filling || !st.nodes.size) return;
    const highest = Math.max(...st.nodes.keys());
    let missing = 0;
    for (let s = 1; s <= highest; s++) if (!st.nodes.has(s)) { missing = s; break; }
    if (!missing) return;
    st.filling = true;
    try {
      let offset = missing - 1;
      while (offset < highest) {
        const page = await api(`/v1/discussions/${encodeURIComponent(did)}/messages?limit=500&offset=${offset}`);
        for (const m of page.messages) addMessage(m, false);
        if (!page.messages.length) break;
        offset += page.messages.length;
      }
    } catch (err) {
      console.warn("could not fill the transcript", err);
    } finally {
      st.filling = false;
      renderState();
    }
  }

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
        applyDelta(d);
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

  // ------------------------------------------------------------------ posting

  function writers() {
    return [...st.people.values()].filter((p) =>
      p.participant_type === "human" && (p.permissions || []).includes("write"));
  }

  function acting() { return person($("as").value) || null; }

  function renderPostForm() {
    const section = $("post-section");
    const people = writers();
    section.hidden = !people.length;
    if (!people.length) return;
    const select = $("as");
    if (select.options.length !== people.length) {
      const wanted = select.value || query.get("as") || query.get("participant");
      select.replaceChildren(...people.map((p) =>
        el("option", { value: p.participant_id, text: `${p.name}${p.role ? ` (${p.role})` : ""}` })));
      if (wanted && people.some((p) => p.participant_id === wanted)) select.value = wanted;
    }
    updateTurnHint();
  }

  // Whether the protocol lets the chosen person post now; the server decides in the end.
  function mayPost() {
    const s = st.session;
    const me = acting();
    if (!s || !me) return [false, ""];
    if (TERMINAL.has(s.status)) return [false, "The discussion has ended."];
    if (s.status === "waiting_for_human" && s.waiting_for === me.participant_id) {
      return [true, "It is your turn."];
    }
    if (s.protocol === "round_robin") {
      const who = s.waiting_for && person(s.waiting_for);
      return [false, who ? `Waiting for ${who.name}.` : "Round-robin: you can post when it is your turn."];
    }
    return [true, ""];
  }

  function updateTurnHint() {
    if ($("post-section").hidden) return;
    const [ok, hint] = mayPost();
    $("send").disabled = !ok;
    $("turn-hint").textContent = hint;
    $("post").classList.toggle("your-turn", ok && hint === "It is your turn.");
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  async function post(e) {
    e.preventDefault();
    const content = $("content").value.trim();
    const status = $("post-status");
    if (!content) { status.textContent = "Write a message first."; $("content").focus(); return; }
    const body = { participant_id: $("as").value, content };
    const headers = { "Idempotency-Key": newKey() };
    $("send").disabled = true;
    status.textContent = "Sending…";
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const m = await api(`/v1/discussions/${encodeURIComponent(did)}/messages`,
                            { method: "POST", body, headers });
        addMessage(m);
        $("content").value = "";
        status.textContent = m && m.status === "held" ? "Held for a moderator's approval." : "Sent.";
        $("content").focus(); // Send is disabled now: keep keyboard users in the form
        break;
      } catch (err) {
        // Only a lost response is retried, with the same key, so it cannot post twice.
        if (err instanceof UI.ApiError || attempt === 2) { status.textContent = `Not sent: ${err.message}`; break; }
        await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      }
    }
    renderState();
  }

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

  // ------------------------------------------------------------------ export

  // Fetched (not linked) so the access token goes along; saved through a blob URL.
  async function exportAs(e) {
    const format = e.target.dataset.format;
    const status = $("export-status");
    status.textContent = "…";
    try {
      const headers = UI.token() ? { Authorization: `Bearer ${UI.token()}` } : {};
      const resp = await fetch(`/v1/discussions/${encodeURIComponent(did)}/export?format=${format}`,
                               { headers });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const url = URL.createObjectURL(await resp.blob());
      const a = el("a", { href: url, download: `${did}.${format === "markdown" ? "md" : "json"}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      status.textContent = "";
    } catch (err) {
      status.textContent = `Export failed: ${err.message}`;
    }
  }

  // ------------------------------------------------------------------ start

  $("post").addEventListener("submit", post);
  $("export-md").addEventListener("click", exportAs);
  $("export-json").addEventListener("click", exportAs);
  $("as").addEventListener("change", () => { updateTurnHint(); renderActions(); });

  // Test and debugging hooks: drop the socket (and hold off reconnecting for holdMs).
  window.viewer = {
    state: st,
    drop(holdMs = 0) { st.holdUntil = Date.now() + holdMs; if (st.ws) st.ws.close(); },
    seqs() { return [...st.nodes.keys()].sort((a, b) => a - b); },
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
