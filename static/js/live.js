// Live areas poll only while their tab is visible: a poll that fires in a hidden tab is dropped
// before it leaves, and the `visibilitychange from:document` trigger refreshes the area as soon
// as the tab is shown again. A file of its own, not inline, for the Content-Security-Policy.
document.addEventListener("htmx:before:request", (event) => {
  if (document.hidden && event.target.closest("[data-live]")) {
    event.preventDefault();
  }
});
