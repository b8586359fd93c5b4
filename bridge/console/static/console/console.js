// An enhancement only: every page reads the same without it. Each time, shown in UTC,
// gets the reader's local time as its tooltip.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      el.title = "Your local time: " + when.toLocaleString();
    }
  });
});
