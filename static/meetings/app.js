/*
 * The little JavaScript the dashboard needs. Everything works without it (links and plain form
 * POSTs); this only upgrades: confirmations open in a <dialog> instead of a confirmation page,
 * htmx failures get a visible message, and the meetings list's "select all" box works.
 * No inline scripts anywhere, so a strict Content-Security-Policy can forbid them.
 */
(function () {
  "use strict";

  function toast(text) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // a[data-confirm="dialog-id"] is a link to a confirmation page; with JS it opens the dialog.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-confirm]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-confirm"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
        var focus = dialog.querySelector("[autofocus]") || dialog.querySelector("button");
        if (focus) focus.focus();
      }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) {
        event.preventDefault();
        open.close();
      }
    }
  });

  // A dialog whose form was sent closes; the answer lands in the page behind it.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var dialog = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("dialog");
    if (dialog && dialog.open) dialog.close();
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 403) {
      toast("You don't have permission to do that. Ask an administrator if you need it.");
    } else if (status === 404) {
      toast("That no longer exists. Reload the page to see the current state.");
    } else if (status === 429) {
      toast("Too many requests: wait a moment and try again.");
    } else if (status >= 500) {
      toast("Something went wrong on the dashboard's side; nothing was lost. Try again, or reload.");
    } else {
      toast("The request was refused (" + status + "). Reload the page and try again.");
    }
  });
  document.addEventListener("htmx:sendError", function () {
    toast("Can't reach the dashboard. Check the network; the page will catch up when it's back.");
  });

  // Row selection for bulk actions: input[data-select-all] toggles the form's "ids" boxes;
  // [data-selected-count] says how many are ticked and [data-needs-selection] buttons wait for one.
  function updateSelection(form) {
    if (!form || !form.querySelector("[data-selected-count]")) return;
    var count = form.querySelectorAll('input[type="checkbox"][name="ids"]:checked').length;
    form.querySelectorAll("[data-selected-count]").forEach(function (el) {
      el.textContent = count ? count + " selected" : "None selected";
    });
    form.querySelectorAll("[data-needs-selection]").forEach(function (el) {
      el.disabled = count === 0;
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (event.target.hasAttribute("data-select-all") && form) {
      form.querySelectorAll('input[type="checkbox"][name="ids"]').forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    updateSelection(form);
  });
  function initSelections() {
    document.querySelectorAll("form").forEach(updateSelection);
  }
  document.addEventListener("DOMContentLoaded", initSelections);
  document.addEventListener("htmx:afterSettle", initSelections);
})();
