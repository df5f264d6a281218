// The New study form: adds a model row on demand (a copy of the formset's empty row, its
// number in place of __prefix__), and refuses to send more files than the server takes.

const form = document.getElementById("new-study-form");
const list = form.querySelector(".model-row-list");
const template = document.getElementById("model-row-template");
const total = form.querySelector('input[name="model-TOTAL_FORMS"]');
const maxRows = Number(form.querySelector('input[name="model-MAX_NUM_FORMS"]').value);
const addButton = document.getElementById("add-model");
const limitError = document.getElementById("file-limit");
const maxFiles = Number(form.dataset.maxFiles);

function addRow() {
  const index = Number(total.value);
  if (index >= maxRows) return;
  const html = template.innerHTML.replaceAll("__prefix__", String(index));
  list.insertAdjacentHTML("beforeend", html);
  total.value = String(index + 1);
  list.lastElementChild.querySelector("input").focus();
  addButton.hidden = index + 1 >= maxRows;
}

function filesChosen() {
  let files = 0;
  for (const input of form.querySelectorAll('input[type="file"]')) files += input.files.length;
  return files;
}

addButton.hidden = false;
addButton.addEventListener("click", addRow);

form.addEventListener("submit", (event) => {
  const files = filesChosen();
  if (maxFiles && files > maxFiles) {
    // The server would refuse the whole upload without a word about why.
    event.preventDefault();
    limitError.textContent =
      `${files} files chosen, but one submission takes at most ${maxFiles}: ` +
      "put the images in zips (one for the real images, one per model).";
    limitError.hidden = false;
    limitError.scrollIntoView({ block: "center" });
  }
});
