// watchfloor's one script: keyboard moves and live updates in the queue, and completion in the
// command console. Every action also works without it, through plain forms.
"use strict";

function queue() {
  const table = document.querySelector("table.queue");
  if (!table) return;
  const rows = () => Array.from(table.querySelectorAll("tbody tr"));
  let current = -1;
  const mark = (n) => {
    const all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(all.length - 1, n));
    all.forEach((r, i) => r.classList.toggle("current", i === current));
    all[current].scrollIntoView({ block: "nearest" });
  };
  const selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", () =>
      rows().forEach((r) => { r.querySelector("input[type=checkbox]").checked = selectAll.checked; }));
  }
  const bulk = document.getElementById("bulk");
  const act = (action) => {
    const row = rows()[current];
    if (!row || !bulk) return;
    rows().forEach((r) => { r.querySelector("input[type=checkbox]").checked = r === row; });
    // A key acts on the row it is on, never on every match.
    const every = bulk.querySelector("input[name=all]");
    if (every) every.checked = false;
    const button = bulk.querySelector(`button[value="${action}"]`);
    if (button) button.click();
  };
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j") mark(current + 1);
    else if (e.key === "k") mark(current - 1);
    else if (e.key === "Enter" && current >= 0) rows()[current].querySelector("td.name a").click();
    else if (e.key === "a" && current >= 0) act("assign-me");
    else if (e.key === "c" && current >= 0) {
      window.location = rows()[current].querySelector("td.name a").getAttribute("href") + "#close";
    } else if (e.key === "/") { e.preventDefault(); document.querySelector("input[name=q]").focus(); }
    else return;
    e.preventDefault();
  });
  // Live updates: on the first page, with nothing selected, fresh rows replace the old ones.
  const base = document.title;
  let since = table.dataset.since;
  const poll = async () => {
    if (table.dataset.firstPage !== "true") return;
    const url = table.dataset.fresh + (table.dataset.fresh.includes("?") ? "&" : "?") +
      "since=" + encodeURIComponent(since);
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (!answer.ok) return;
      const data = await answer.json();
      const selected = rows().some((r) => r.querySelector("input[type=checkbox]").checked);
      if (data.new > 0 && !selected) {
        table.querySelector("tbody").innerHTML = data.rows;
        document.title = `(${data.new}) ${base}`;
        const note = document.getElementById("fresh");
        note.textContent = `${data.new} new since you opened the queue`;
        note.hidden = false;
        current = -1;
      }
    } catch (_) { /* the next poll tries again */ }
  };
  setInterval(poll, 5000);
}

function consoleCompletion() {
  const input = document.getElementById("command-line");
  const list = document.getElementById("command-list");
  const defs = document.getElementById("command-defs");
  if (!input || !list || !defs) return;
  const commands = JSON.parse(defs.textContent || "{}");
  const names = Object.keys(commands);
  input.addEventListener("input", () => {
    const line = input.value;
    const match = /^!(\S+)\s(.*)$/.exec(line);
    const options = [];
    if (match && commands[match[1]]) {
      const given = new Set(Array.from(match[2].matchAll(/(\S+)=/g), (m) => m[1]));
      for (const arg of commands[match[1]]) {
        if (!given.has(arg)) options.push(line.replace(/\s*$/, " ") + arg + "=");
      }
    } else {
      for (const name of names) options.push("!" + name + " ");
    }
    list.replaceChildren(...options.map((v) => { const o = document.createElement("option"); o.value = v; return o; }));
  });
}

function closeDialog() {
  if (window.location.hash === "#close") {
    const dialog = document.getElementById("close");
    if (dialog) { dialog.open = true; const r = dialog.querySelector("select"); if (r) r.focus(); }
  }
}

// A change to every match can take seconds: its button says so, and is not pressed twice.
function confirmWorking() {
  document.querySelectorAll("form.confirm").forEach((form) => form.addEventListener("submit", () => {
    const button = form.querySelector("button");
    if (button) { button.disabled = true; button.textContent = "Working…"; }
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  queue(); consoleCompletion(); closeDialog(); confirmWorking();
});
