// Poindexter Cloud portal: copy buttons and live provisioning progress. The pages work
// without it; this only saves reloads.
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var text = btn.getAttribute("data-copy");
      var done = function () {
        var label = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = label; }, 1500);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, done);
      } else {
        done();
      }
    });
  });

  var progress = document.getElementById("progress");
  if (!progress) return;
  var url = progress.getAttribute("data-status-url");
  var labels = { pending: "Waiting", running: "In progress…", done: "Done", failed: "Failed",
    compensating: "Undoing…", compensated: "Undone" };
  var poll = function () {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        (s.steps || []).forEach(function (step) {
          var li = progress.querySelector('[data-step="' + step.step + '"]');
          if (!li) return;
          li.setAttribute("data-status", step.status);
          var state = li.querySelector(".step-state");
          if (state) state.textContent = labels[step.status] || step.status;
          var icon = li.querySelector(".step-icon");
          if (icon) icon.textContent = step.status === "done" ? "✓" : (step.status === "failed" || step.status === "compensated") ? "!" : "";
        });
        // The server decides what comes next (consent, or the failure with its Retry).
        if (s.phase !== progress.getAttribute("data-phase")) {
          window.location.reload();
          return;
        }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  };
  setTimeout(poll, 800);
})();
