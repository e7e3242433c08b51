// Live areas poll only while their tab is visible: a poll that fires in a hidden tab is dropped
// before it leaves, and the `visibilitychange from:document` trigger refreshes the area as soon
// as the tab is shown again. A file of its own, not inline, for the Content-Security-Policy.
//
// A poll asks the server every time ("no-cache" revalidates with the ETag, so an unchanged area
// costs a 304): public pages allow caches stale-while-revalidate, which would otherwise let the
// browser answer a poll with the copy of the poll before.
document.addEventListener("htmx:before:request", (event) => {
  if (!event.target.closest("[data-live]")) {
    return;
  }
  if (document.hidden) {
    event.preventDefault();
  } else {
    event.detail.ctx.request.cache = "no-cache";
  }
});

// A poll that meets a server error (a 503 while the database restarts) keeps what the area
// showed and polls on: htmx 4 swaps error answers too, and the error page would take the area's
// place, its trigger with it.
document.addEventListener("htmx:before:swap", (event) => {
  if (event.target.closest("[data-live]") && event.detail.ctx.response.status >= 500) {
    event.preventDefault();
  }
});

// A table wider than its box shows the hint before it (.scroll-hint), on load, on a resize and
// after every poll that replaced it.
function markScrollingTables() {
  for (const box of document.querySelectorAll(".scroll")) {
    const hint = box.previousElementSibling;
    if (hint && hint.classList.contains("scroll-hint")) {
      hint.hidden = box.scrollWidth <= box.clientWidth + 1;
    }
  }
}
document.addEventListener("DOMContentLoaded", markScrollingTables);
document.addEventListener("htmx:after:swap", markScrollingTables);
window.addEventListener("resize", markScrollingTables);
