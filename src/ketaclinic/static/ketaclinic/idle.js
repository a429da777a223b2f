// Idle logoff: once the idle time has passed with no navigation, reload the page. The server
// (IdleLogoutMiddleware) then signs the user out, so patient data leaves the screen.
(function () {
  var el = document.getElementById("idle-timer");
  var seconds = parseInt(el && el.dataset.idleSeconds, 10);
  if (!seconds) { return; }
  var timer = null;
  function arm() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { window.location.assign(window.location.pathname); },
                       (seconds + 1) * 1000);
  }
  arm();
})();
