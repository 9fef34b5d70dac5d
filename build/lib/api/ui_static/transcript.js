/* The transcript list: committed messages once each, in seq order; streamed drafts; notes.

   Messages are keyed by `seq`: one already shown is never shown twice, and one arriving out of
   order is inserted in place. A hole in 1..highest seq is filled from the REST transcript. A
   `message_delta` grows the draft of its turn; the turn's committed message replaces it. */
"use strict";

const Transcript = (() => {
  const { api, el, when } = UI;

  function create({ list, did, person, kindLabel, onAdded, onFilled }) {
    const nodes = new Map(); // seq -> <li>
    const drafts = new Map(); // turn (or participant) -> streaming <li>
    const self = { nodes, deltas: 0, filling: false };

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

    // Adds a committed message once, in seq order; replaces its streaming draft.
    self.add = (m, check = true) => {
      if (!m || typeof m.seq !== "number" || nodes.has(m.seq)) return false;
      const node = messageNode(m, false);
      let before = null;
      for (const [seq, li] of nodes) if (seq > m.seq && (!before || seq < Number(before.dataset.seq))) before = li;
      const draftKey = m.turn ?? null;
      const draft = draftKey !== null ? drafts.get(draftKey) : null;
      if (draft) {
        draft.replaceWith(node);
        drafts.delete(draftKey);
        if (before) list.insertBefore(node, before);
      } else {
        list.insertBefore(node, before || list.querySelector("li.draft"));
      }
      nodes.set(m.seq, node);
      onAdded(m);
      if (check) self.fill();
      return true;
    };

    self.delta = (d) => {
      const key = d.turn ?? d.participant_id;
      let li = drafts.get(key);
      if (!li) {
        li = messageNode({ seq: "", participant_id: d.participant_id,
                           participant_name: d.participant_name, content: "" }, true);
        drafts.set(key, li);
        list.append(li);
      }
      const text = li.querySelector(".text");
      self.deltas += 1;
      // A re-run of the turn streams again from index 0: start the draft over, never double it.
      if (d.index === 0) text.textContent = "";
      if (typeof d.delta === "string") text.textContent += d.delta;
      else if (typeof d.content === "string") text.textContent = d.content;
      else if (typeof d.text === "string") text.textContent = d.text;
    };

    self.note = (text) => list.append(el("li", { class: "note", text }));

    self.seqs = () => [...nodes.keys()].sort((a, b) => a - b);

    // Fills any hole in 1..highest seq from the REST transcript.
    self.fill = async () => {
      if (self.filling || !nodes.size) return;
      const highest = Math.max(...nodes.keys());
      let missing = 0;
      for (let s = 1; s <= highest; s++) if (!nodes.has(s)) { missing = s; break; }
      if (!missing) return;
      self.filling = true;
      try {
        let offset = missing - 1;
        while (offset < highest) {
          const page = await api(`/v1/discussions/${encodeURIComponent(did)}/messages?limit=500&offset=${offset}`);
          for (const m of page.messages) self.add(m, false);
          if (!page.messages.length) break;
          offset += page.messages.length;
        }
      } catch (err) {
        console.warn("could not fill the transcript", err);
      } finally {
        self.filling = false;
        onFilled();
      }
    };

    return self;
  }

  return { create };
})();
