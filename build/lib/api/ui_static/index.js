/* /ui/: list discussions, start a new one. */
"use strict";

(() => {
  const { api, el } = UI;
  const list = document.getElementById("discussions");
  const listStatus = document.getElementById("list-status");

  async function loadList() {
    listStatus.textContent = "Loading…";
    try {
      const { discussions } = await api("/v1/discussions");
      const shown = discussions.slice(0, 50);
      const sessions = await Promise.all(shown.map((id) =>
        api(`/v1/discussions/${encodeURIComponent(id)}`).catch(() => null)));
      list.replaceChildren(...sessions.filter(Boolean).map(card));
      listStatus.textContent = discussions.length
        ? `${discussions.length} discussion${discussions.length === 1 ? "" : "s"}` +
          (discussions.length > shown.length ? ` (newest ${shown.length} shown)` : "")
        : "No discussions yet.";
    } catch (err) {
      listStatus.textContent = `Could not load discussions: ${err.message}`;
      if (err.status === 401) {
        listStatus.textContent = "This service needs an access token (below).";
        document.querySelector("details.settings").open = true;
      }
    }
  }

  function card(s) {
    return el("li", { class: "card" },
      el("a", { href: `/ui/discussions/${encodeURIComponent(s.id)}`, text: s.topic }),
      el("div", { class: "meta" },
        el("span", { class: `badge status-${s.status}`, text: s.status.replaceAll("_", " ") }),
        el("span", { text: ` ${s.protocol} · round ${s.current_round}/${s.max_rounds} · ` +
                           `${s.message_count} messages · ${s.participants.length} participants` })));
  }

  function lines(text) {
    return text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split("|").map((p) => p.trim()));
  }

  function readForm(form) {
    const body = {
      topic: form.topic.value.trim(),
      protocol: form.protocol.value,
      max_rounds: Number(form.max_rounds.value || 3),
      agents: lines(form.agents.value).map(([persona, role, provider]) => {
        const a = { persona };
        if (role) a.role = role;
        if (provider) a.provider = provider;
        return a;
      }),
      humans: lines(form.humans.value).map(([user_id, name, role, perms]) => {
        const h = { user_id, name: name || user_id };
        if (role) h.role = role;
        if (perms) h.permissions = perms.split(/[\s,]+/).filter(Boolean);
        return h;
      }),
    };
    return body;
  }

  async function create(e) {
    e.preventDefault();
    const form = e.target;
    const status = document.getElementById("create-status");
    if (!form.topic.value.trim()) {
      status.textContent = "Please give the discussion a topic.";
      form.topic.focus();
      return;
    }
    status.textContent = "Starting…";
    try {
      const session = await api("/v1/discussions", { method: "POST", body: readForm(form) });
      const person = session.participants.find((p) => p.participant_type === "human");
      const as = person ? `?as=${encodeURIComponent(person.participant_id)}` : "";
      location.href = `/ui/discussions/${encodeURIComponent(session.id)}${as}`;
    } catch (err) {
      status.textContent = `Not started: ${err.message}`;
    }
  }

  document.getElementById("refresh").addEventListener("click", loadList);
  document.getElementById("create").addEventListener("submit", create);
  loadList();
})();
