/* Posting as a person, and exporting the transcript.

   "Post as" lists the discussion's people with `write` and its external agents; Send is enabled when the protocol lets
   the chosen person post now (the service has the last word). Each post carries a fresh
   Idempotency-Key; only a lost response is retried, with the same key. */
"use strict";

const Compose = (() => {
  const { api, el } = UI;
  const TERMINAL = new Set(["completed", "cancelled", "failed"]);
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);

  function create({ did, st, person, addMessage, renderState, onActorChange }) {
    // People with `write`, and external agents (their own system, or their creator, posts).
    function writers() {
      return [...st.people.values()].filter((p) =>
        (p.participant_type === "human" && (p.permissions || []).includes("write")) ||
        (p.participant_type === "agent" && p.provider === "external"));
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


    $("post").addEventListener("submit", post);
    $("export-md").addEventListener("click", exportAs);
    $("export-json").addEventListener("click", exportAs);
    $("as").addEventListener("change", () => { updateTurnHint(); onActorChange(); });
    return { render: renderPostForm, hint: updateTurnHint, acting };
  }

  return { create };
})();
