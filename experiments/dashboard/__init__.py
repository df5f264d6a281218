"""The researcher's side: the studies list and each study's pages (results, raters, images,
exports, sharing), the live progress socket, and the formatting the pages share with the
command line."""
