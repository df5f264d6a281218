"""A study's exports, one module per file: trials.csv (its columns declared once, in
trials.py), raters.csv, scores.csv, results.tex and bundle.json; cells.py writes their cells,
versions.py names the software, downloads.py sends them (docs/data-dictionary.md)."""
