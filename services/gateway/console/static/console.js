// The board follows changes with server-sent events and fetches its rows again (the event
// says only that something changed). Other pages need no script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const board = document.querySelector("table[data-live]");
  if (!board) return;
  const rows = document.getElementById("board-rows");
  const status = document.getElementById("live-status");
  let pending = null;
  const refresh = () => {
    pending = null;
    fetch(board.dataset.rows + window.location.search, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => { rows.innerHTML = html; status.textContent = "Updated " + new Date().toLocaleTimeString(); })
      .catch(() => { status.textContent = "Could not update the board; reload the page."; });
  };
  const events = new EventSource(board.dataset.live);
  events.addEventListener("changed", () => { if (!pending) pending = setTimeout(refresh, 250); });
  events.onerror = () => { status.textContent = "Live updates paused; retrying…"; };
  events.onopen = () => { status.textContent = "Live"; };
});

// Evidence is sent as the file itself, streamed, never as a multipart form (whose envelope
// would become part of the evidence and of its digest).
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.evidence-upload")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = form.querySelector("input[type=file]").files[0];
      const status = form.querySelector("[role=status]");
      if (!file) return;
      const query = new URLSearchParams({ filename: file.name, description: form.querySelector("#evidence-description").value });
      status.textContent = "Uploading " + file.name + "…";
      fetch(form.dataset.action + "?" + query, {
        method: "POST", body: file, credentials: "same-origin",
        headers: { "Content-Type": file.type || "application/octet-stream", "X-Form-Token": form.dataset.formToken },
      }).then(async (response) => {
        if (response.ok) { window.location.search = "?notice=" + encodeURIComponent("Evidence added: " + file.name + "."); return; }
        const problem = await response.json().catch(() => ({}));
        status.textContent = "Not added: " + (problem.detail || response.status);
      }).catch(() => { status.textContent = "Not added: the upload failed."; });
    });
  }
});
