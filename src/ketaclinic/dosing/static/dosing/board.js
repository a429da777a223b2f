// The chair board: fetch the table again every few seconds and swap it in, so the board stays
// current without a reload. No inline script (the Content-Security-Policy forbids it).
(function () {
  var box = document.querySelector("[data-poll-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-poll-url");
  var seconds = parseInt(box.getAttribute("data-poll-seconds"), 10) || 15;
  function refresh() {
    if (document.hidden) { return; }
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        // A signed-out user is sent to the login page: reload so the page follows.
        if (r.redirected || !r.ok) { window.location.reload(); return null; }
        return r.text();
      })
      .then(function (html) { if (html !== null && html !== undefined) { box.innerHTML = html; } })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
})();
