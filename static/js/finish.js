// The finish page sends the rater on as the platform expects: to Prolific's completion URL, or
// (inside MTurk's frame) by posting the assignment to MTurk. The server renders this page only
// once every answer is stored; the code stays on the page in case this does not happen.

const data = JSON.parse(document.getElementById("finish-data").textContent);

if (data.redirect_url) {
  window.location.replace(data.redirect_url);
} else if (data.post) {
  document.getElementById("mturk-submit").submit();
}
