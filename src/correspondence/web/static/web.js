// Progressive enhancement only: every page works without script.
// "Select all" for the inbox's bulk actions (the checkbox stays hidden without script).
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (!all) return;
  const boxes = () => Array.from(document.querySelectorAll('#bulk input[name="ids"]'));
  all.hidden = false;
  all.addEventListener("change", () => boxes().forEach((b) => { b.checked = all.checked; }));
});
