// Webhooks page: the one-time secret is selected when focused, so it is easy to copy by hand too.
document.addEventListener("focusin", (event) => {
  if (event.target.matches("[data-select-on-focus]")) event.target.select();
});
