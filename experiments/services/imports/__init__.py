"""Importing a study from folders (or uploaded zips) of images: the parameters checked
(parameters.py), the folders read (folders.py), every file normalised (normalise.py), the study
stored with its masks (study.py, masks.py), zips unpacked safely (zips.py, uploads.py) and the
leak audit of what was stored (audit.py)."""
