/*
 * The little JavaScript the dashboard needs. Everything works without it (links and plain form
 * POSTs); this only upgrades: confirmations open in a <dialog> instead of a confirmation page,
 * htmx failures get a visible message, polls that follow Zoom pause in a hidden tab, and the
 * meetings list's "select all" box works.
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

  // A dialog whose form was sent closes; the answer lands in the page behind it. The link that
  // opened it is replaced by that answer, so focus would fall back to <body> and a keyboard or
  // screen reader user would lose their place: it moves to the job the answer shows instead.
  var focusAfterSwap = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var dialog = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("dialog");
    if (dialog && dialog.open) {
      var target = event.detail.elt.getAttribute("hx-target") || "";
      focusAfterSwap = target.charAt(0) === "#" ? target.slice(1) : null;
      dialog.close();
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusAfterSwap) return;
    var panel = document.getElementById(focusAfterSwap);
    focusAfterSwap = null;
    if (!panel) return;
    var where = panel.querySelector(".job, [role=alert]") || panel;
    if (!where.hasAttribute("tabindex")) where.setAttribute("tabindex", "-1");
    where.focus();
  });

  // A plain form POST (no htmx: the bulk run, the no-JS confirmation page) waits for the server
  // with nothing on screen: its button shows the spinner, and a second click sends nothing.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "post") return;
    if (form.classList.contains("is-submitting")) {
      event.preventDefault();
      return;
    }
    form.classList.add("is-submitting");
    form.setAttribute("aria-busy", "true");
  });
  // Back from the next page (the browser's page cache), the form is usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form.is-submitting").forEach(function (form) {
      form.classList.remove("is-submitting");
      form.removeAttribute("aria-busy");
    });
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

  // Parts that follow Zoom ([data-follow], e.g. a meeting's status) poll only while the tab is
  // visible: a page left open in a background tab all day would otherwise ask every few seconds
  // for nothing. On return they ask at once, so the operator never acts on what the page showed
  // before. (htmx's own [document.visibilityState === 'visible'] trigger filter is evaluated
  // with Function(), which the Content-Security-Policy forbids, as does htmx-config allowEval.)
  //
  // Nor do they ask while one of the page's forms is on its way (an End, a Fetch, a Save): a
  // followed part swapped meanwhile would take the form's spinner with it, and the form's answer
  // would then land in a part no longer in the page (htmx swaps into the element it targeted when
  // it sent, and drops the answer if that is gone). The answer is newer than the poll's anyway,
  // and the next tick catches up with the rest. For the same reason a form sent while a poll is
  // on its way aborts the poll.
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-follow")) return;
    if (document.hidden || document.querySelector("form.htmx-request")) {
      event.preventDefault();
    }
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || elt.tagName !== "FORM" || !window.htmx) return;
    document.querySelectorAll("[data-follow]").forEach(function (follow) {
      window.htmx.trigger(follow, "htmx:abort");
    });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[data-follow]").forEach(function (elt) {
      window.htmx.trigger(elt, "follow-now");
    });
  });

  // Relative times (time[data-ago], the ago_time template tag) stay true while the page is open:
  // a followed page whose polls answer "nothing changed" keeps its HTML, and would otherwise say
  // "Last event just now" an hour later. Written as Django's timesince writes them ("2 hours,
  // 3 minutes ago", no line break inside "3 minutes"), counted from the server's clock: data-now
  // is when the server rendered the element, so the offset to this browser's clock is known.
  var AGO_UNITS = [
    ["year", 365 * 86400],
    ["month", 30 * 86400],
    ["week", 7 * 86400],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  function agoText(seconds) {
    if (seconds < 60) return "just now";
    function part(count, unit) {
      return count + "\u00a0" + unit + (count === 1 ? "" : "s");
    }
    for (var i = 0; i < AGO_UNITS.length; i++) {
      var count = Math.floor(seconds / AGO_UNITS[i][1]);
      if (count < 1) continue;
      var text = part(count, AGO_UNITS[i][0]);
      var next = AGO_UNITS[i + 1];
      if (next) {
        var rest = Math.floor((seconds - count * AGO_UNITS[i][1]) / next[1]);
        if (rest >= 1) text += ", " + part(rest, next[0]);
      }
      return text + " ago";
    }
    return "just now";
  }
  function stampAgo() {
    // As each element arrives (the page, an htmx swap): this clock minus the server's.
    document.querySelectorAll("time[data-ago]").forEach(function (elt) {
      if (elt.agoOffset !== undefined) return;
      var rendered = Date.parse(elt.getAttribute("data-now"));
      elt.agoOffset = isNaN(rendered) ? 0 : Date.now() - rendered;
    });
  }
  function refreshAgo() {
    stampAgo();
    document.querySelectorAll("time[data-ago]").forEach(function (elt) {
      var at = Date.parse(elt.getAttribute("datetime"));
      if (isNaN(at)) return;
      var text = agoText((Date.now() - elt.agoOffset - at) / 1000);
      if (elt.textContent !== text) elt.textContent = text;
    });
  }
  document.addEventListener("DOMContentLoaded", stampAgo);
  document.addEventListener("htmx:load", stampAgo);
  setInterval(function () {
    if (!document.hidden) refreshAgo();
  }, 15000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refreshAgo();
  });

  // Times in the browser's own zone (meetings/timezones.py): the server learns it from the "tz"
  // cookie. A page drawn in another zone, for someone who chose none, is drawn again once.
  (function () {
    var zone;
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {
      return;
    }
    if (!zone) return;
    var cookie = "tz=" + encodeURIComponent(zone);
    if (document.cookie.split("; ").indexOf(cookie) === -1) {
      document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax";
    }
    var body = document.body;
    if (!body || !body.dataset.tz || body.dataset.tzSource === "preference") return;
    if (body.dataset.tz !== zone && document.cookie.indexOf(cookie) !== -1) {
      var key = "tz-redrawn:" + location.pathname;
      if (sessionStorage.getItem(key) === zone) return;
      sessionStorage.setItem(key, zone);
      location.reload();
    }
  })();

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
    form.toggleAttribute("data-has-selection", count > 0);
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

  // Filters that fold on a phone (form[data-collapsible]): open when some are in use.
  function initFilters() {
    document.querySelectorAll("form[data-collapsible]:not(.collapsible)").forEach(function (form) {
      var toggle = form.querySelector(".filters-toggle");
      if (!toggle) return;
      form.classList.add("collapsible");
      function show(open) {
        form.classList.toggle("expanded", open);
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      }
      show(form.hasAttribute("data-expanded"));
      toggle.addEventListener("click", function () {
        show(!form.classList.contains("expanded"));
      });
    });
  }
  // The idle sign-out (SESSION_IDLE_MINUTES, meetings/signin.py) counts what a person does, not
  // the page's own refreshes: an htmx request is marked as activity only when a real (trusted)
  // event of the user's started it. Polls ("every 5s") have no triggering event, and the
  // refreshes after a job finishes are events the page sends itself (not trusted).
  document.addEventListener("htmx:configRequest", function (event) {
    var cause = event.detail.triggeringEvent;
    if (cause && cause.isTrusted) event.detail.headers["X-Zoomadmin-Activity"] = "1";
  });
  document.addEventListener("DOMContentLoaded", initFilters);
  document.addEventListener("DOMContentLoaded", initSelections);
  document.addEventListener("htmx:afterSettle", initSelections);
})();
