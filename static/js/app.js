// Small progressive enhancements; every page works without JavaScript. No inline handlers in
// the templates (a Content-Security-Policy without 'unsafe-inline' must not break a page):
// behaviour is attached here through data- attributes.

// <button data-copy="#id">: copies the target's value or text.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const target = document.querySelector(button.dataset.copy);
  if (!target) return;
  navigator.clipboard.writeText(target.value || target.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

// <select data-submit-on-change>: choosing submits its form (a <noscript> button does it without JS).
document.addEventListener("change", (event) => {
  const control = event.target.closest("[data-submit-on-change]");
  if (control && control.form) control.form.requestSubmit();
});

// <input data-select-on-focus>: focusing selects the whole value, ready to copy.
document.addEventListener("focusin", (event) => {
  const input = event.target.closest("[data-select-on-focus]");
  if (input) input.select();
});
