// The confirm page's countdown to the hold's expiry. The server already wrote the time left and the
// time the hold ends; this only keeps the numbers moving and, at zero, says so and disables the button
// (the server refuses an expired hold anyway).
(function () {
  "use strict";

  function pad(number) {
    return number < 10 ? "0" + number : String(number);
  }

  function start(element) {
    var expiresAt = Date.parse(element.getAttribute("data-expires-at"));
    if (isNaN(expiresAt)) {
      return;
    }
    function tick() {
      var left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      if (left === 0) {
        element.textContent = element.getAttribute("data-expired-text") || "0:00";
        element.setAttribute("data-expired", "true");
        document.querySelectorAll("[data-disable-on-expiry]").forEach(function (button) {
          button.disabled = true;
        });
        return;
      }
      element.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      window.setTimeout(tick, 1000 - (Date.now() % 1000));
    }
    tick();
  }

  function startAll() {
    document.querySelectorAll("[data-expires-at]").forEach(start);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startAll);
  } else {
    startAll();
  }
})();
