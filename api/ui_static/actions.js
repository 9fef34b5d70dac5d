/* Votes and moderation controls, driven by what the service offers.

   The controls are not hard-coded: each POST endpoint of the form
   /v1/discussions/{id}/<action> (other than messages) found in the service's /openapi.json
   becomes a small form built from its request-body schema. A session that lists `capabilities`
   narrows that to the listed actions. A service without such endpoints shows no controls. */
"use strict";

const Actions = (() => {
  const { api, el } = UI;
  const TERMINAL = new Set(["completed", "cancelled", "failed"]);
  // The field naming who acts: an explicit actor field if the body has one, else participant_id.
  const ACTORS = ["by", "actor_id", "moderator_id", "voter_id", "participant_id"];
  const TARGET = /^(participant_id|target|target_id|target_participant_id|speaker_id|to)$/;
  const selfField = (props) => ACTORS.find((a) => props.some((p) => p.name === a));
  const LABELS = { votes: "Cast vote", moderation: "Apply" };
  const ACTION_PATH = /^\/v1\/discussions\/\{[^}]+\}\/([A-Za-z0-9_-]+)$/;

  async function discover() {
    let doc;
    try { doc = await api("/openapi.json"); } catch (err) { return []; }
    const schemas = (doc.components && doc.components.schemas) || {};
    const resolve = (s) => {
      for (let i = 0; s && i < 10; i++) {
        if (s.$ref) s = schemas[s.$ref.split("/").pop()];
        else if (s.anyOf || s.oneOf) s = (s.anyOf || s.oneOf).find((x) => x.type !== "null") || {};
        else if (s.allOf && s.allOf.length === 1) s = s.allOf[0];
        else return s;
      }
      return s || {};
    };
    const out = [];
    for (const [path, ops] of Object.entries(doc.paths || {})) {
      const m = path.match(ACTION_PATH);
      if (!m || m[1] === "messages" || !ops.post) continue;
      const body = ops.post.requestBody;
      const schema = body ? resolve(((body.content || {})["application/json"] || {}).schema) : {};
      const props = Object.entries(schema.properties || {}).map(([name, s]) => ({
        name, schema: resolve(s), required: (schema.required || []).includes(name),
      }));
      out.push({ name: m[1], summary: ops.post.summary || "", props });
    }
    return out;
  }

  function allowedBySession(session, name) {
    const caps = session.capabilities;
    if (!caps) return true;
    if (Array.isArray(caps)) return caps.includes(name);
    return Boolean(caps[name]);
  }

  function isVote(name) { return /vote|ballot/.test(name); }
  // Actions that end a discussion or throw it away: shown last, apart, and marked.
  function isDestructive(name) { return /^(cancel|end|delete|stop|abort)/.test(name); }
  // Moderator verbs first, then pause and resume, the destructive ones last.
  function rank(action) {
    if (isDestructive(action.name)) return 2;
    return action.props.some((p) => p.name === "action" || TARGET.test(p.name)) ? 0 : 1;
  }
  const GROUPS = ["Moderator actions", "Pause and resume", "End the discussion"];

  function fitsStatus(name, status) {
    if (TERMINAL.has(status)) return false;
    if (name === "resume") return status === "paused";
    if (name === "pause") return status !== "paused";
    return true;
  }

  function field(action, prop, ctx, idx) {
    const id = `act-${action.name}-${prop.name}-${idx}`;
    const label = el("label", { for: id, text: prop.name.replaceAll("_", " ") + (prop.required ? "" : " (optional)") });
    const s = prop.schema;
    let input;
    if (TARGET.test(prop.name)) {
      input = el("select", { id, name: prop.name },
        prop.required ? null : el("option", { value: "", text: "(none)" }),
        ...[...ctx.people.values()].map((p) => el("option", { value: p.participant_id, text: p.name })));
    } else if (prop.name === "held_id") {
      // Posts waiting for approval, listed for the moderator to pick (typed in if unavailable).
      input = el("select", { id, name: prop.name, class: "held-select" });
      fillHeld(input, ctx.did);
    } else if (Array.isArray(s.enum)) {
      input = el("select", { id, name: prop.name },
        ...s.enum.map((v) => el("option", { value: v, text: String(v) })));
      if (s.default !== undefined) input.value = s.default;
    } else if (s.type === "boolean") {
      input = el("input", { id, name: prop.name, type: "checkbox", checked: Boolean(s.default) });
      return el("div", { class: "check" }, input, label);
    } else if (s.type === "integer" || s.type === "number") {
      input = el("input", { id, name: prop.name, type: "number", inputmode: "numeric",
                            value: s.default ?? "" });
    } else if (s.type === "string") {
      input = el(s.maxLength && s.maxLength <= 200 ? "input" : "textarea",
                 { id, name: prop.name, value: s.default ?? "", rows: 2 });
    } else {
      return null; // objects and lists are left to the API
    }
    if (prop.required) input.required = true;
    return el("div", { class: "field" }, label, input);
  }

  // Lists the held posts in a select, keeping the choice when it is still held.
  async function fillHeld(select, did) {
    try {
      const { held } = await api(`/v1/discussions/${encodeURIComponent(did)}/held`);
      const keep = select.value;
      select.replaceChildren(el("option", { value: "", text: "(none)" }), ...(held || []).map((h) => {
        const m = h.message || {};
        return el("option", { value: h.held_id,
                              text: `${m.participant_name || ""}: ${(m.content || "").slice(0, 60)}` });
      }));
      if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    } catch (err) {
      select.replaceWith(el("input", { id: select.id, name: select.name }));
    }
  }

  function refreshHeld(did) {
    for (const select of document.querySelectorAll("select.held-select")) fillHeld(select, did);
  }

  function form(action, ctx, idx) {
    const actor = selfField(action.props);
    const fields = action.props.filter((p) => p.name !== actor)
      .map((p) => field(action, p, ctx, idx)).filter(Boolean);
    // Feedback goes to the section's status line, which outlives the forms (they are rebuilt
    // when the discussion's status changes).
    const status = isVote(action.name) ? ctx.voteStatus : ctx.modStatus;
    const label = LABELS[action.name] || action.name.replaceAll("_", " ").replaceAll("-", " ");
    const button = el("button", { type: "submit", text: label[0].toUpperCase() + label.slice(1),
                                  disabled: !fitsStatus(action.name, ctx.session.status) });
    // Each action is its own labelled group: its legend is the operation's summary, so a
    // "reason" box says whose reason it is.
    const legend = el("legend", { text: (action.summary || label).replace(/\.$/, "") });
    const destructive = isDestructive(action.name);
    if (destructive) button.classList.add("danger");
    const f = el("form", { class: `action action-${action.name}${destructive ? " destructive" : ""}`,
                           "data-action": action.name },
                 el("fieldset", {}, legend, ...fields, button));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {};
      for (const p of action.props) {
        if (p.name === actor) { if (ctx.me) body[p.name] = ctx.me.participant_id; continue; }
        const input = f.elements[p.name];
        if (!input) continue;
        if (input.type === "checkbox") body[p.name] = input.checked;
        else if (input.value === "") continue;
        else if (input.type === "number") body[p.name] = Number(input.value);
        else body[p.name] = input.value;
      }
      button.disabled = true;
      status.textContent = `${label}…`;
      try {
        const result = await api(`/v1/discussions/${encodeURIComponent(ctx.did)}/${action.name}`,
                                 { method: "POST", body });
        status.textContent = `${label}: ${result && result.status === "held" ? "held for approval" : "done"}`;
        ctx.onDone(result);
      } catch (err) {
        status.textContent = `${label}: ${err.message}`;
      } finally {
        button.disabled = !fitsStatus(action.name, ctx.session.status);
      }
    });
    return f;
  }

  function render(ctx) {
    const { session, me } = ctx;
    const perms = (me && me.permissions) || [];
    const hasWriters = [...ctx.people.values()].some((p) => p.participant_type === "human");
    const offered = ctx.actions.filter((a) => allowedBySession(session, a.name));
    const votes = offered.filter((a) => isVote(a.name));
    const mods = offered.filter((a) => !isVote(a.name));
    // People vote with `write`; moderation needs `moderate`. A discussion with no people is an
    // operator's view: its controls show, and the service's authorization decides.
    const canVote = votes.length && perms.includes("write") &&
      (session.protocol === "consensus" || Array.isArray(session.capabilities));
    const canModerate = mods.length && (perms.includes("moderate") || !hasWriters);
    ctx.voteSection.hidden = !canVote;
    ctx.modSection.hidden = !canModerate;
    const key = JSON.stringify([session.status, me && me.participant_id, offered.map((a) => a.name)]);
    if (ctx.modBox.dataset.key === key) return; // unchanged: keep what the user is typing
    ctx.modBox.dataset.key = key;
    ctx.voteBox.replaceChildren(...(canVote ? votes.map((a, i) => form(a, ctx, i)) : []));
    ctx.modBox.replaceChildren(...(canModerate ? grouped(mods, ctx) : []));
  }

  // The moderation forms in titled groups, in GROUPS order; empty groups are left out.
  function grouped(mods, ctx) {
    const out = [];
    GROUPS.forEach((title, g) => {
      const forms = mods.filter((a) => rank(a) === g).map((a, i) => form(a, ctx, i));
      if (!forms.length) return;
      out.push(el("section", { class: `mod-group${g === 2 ? " danger-zone" : ""}` },
                  el("h3", { text: title }), ...forms));
    });
    return out;
  }

  return { discover, render, refreshHeld };
})();
