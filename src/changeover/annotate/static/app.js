// Keyboard shortcuts for the labelling screen. The page works without this script.
"use strict";
(function () {
  const form = document.getElementById("label-form");
  const questions = form ? Array.from(form.querySelectorAll("fieldset.question")) : [];

  function answered(fieldset) {
    return fieldset.querySelector("input:checked") !== null;
  }
  function current() {
    return questions.find((q) => !answered(q)) || null;
  }
  function mark() {
    const next = current();
    questions.forEach((q) => q.classList.toggle("current", q === next));
  }
  function answer(value) {
    const fieldset = current();
    if (fieldset === null) return;
    fieldset.querySelector('input[value="' + value + '"]').checked = true;
    mark();
    if (current() === null) form.requestSubmit();
  }
  function clearLast() {
    const done = questions.filter(answered);
    if (done.length === 0) return;
    done[done.length - 1].querySelectorAll("input").forEach((i) => { i.checked = false; });
    mark();
  }
  function submit(id) {
    const target = document.getElementById(id);
    if (target) target.requestSubmit();
  }

  questions.forEach((q) => q.addEventListener("change", mark));
  mark();
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" && event.target.type !== "radio") return;
    if (tag === "TEXTAREA") {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key.toLowerCase();
    if (form && (key === "y" || key === "1")) answer("1");
    else if (form && (key === "n" || key === "0")) answer("0");
    else if (form && key === "backspace") clearLast();
    else if (form && key === "enter") { if (current() === null) form.requestSubmit(); }
    else if (key === "s") submit("skip-form");
    else if (key === "u") submit("undo-form");
    else return;
    event.preventDefault();
  });
})();
