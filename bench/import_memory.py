"""Peak memory of importing one large 16-bit image: a 7000 x 7000 16-bit greyscale PNG
normalised to 256 x 256 by experiments.services.imports.normalise, against the image's decoded
size (98 MB) and, as the baseline measured in the same run, against converting it through one
float64 copy of the whole image (what the import did before).

Each conversion runs in a fresh process and reports its peak resident memory (VmHWM, Linux)
above what the process held just before decoding. Run from the repository root:
.venv/bin/python bench/import_memory.py [--side 7000]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from common import REPOSITORY

CHILD = r"""
import json, sys
sys.path.insert(0, {repo!r})
import numpy as np
from PIL import Image
from experiments.services.imports import normalise
Image.MAX_IMAGE_PIXELS = None

def whole_image_float64(picture):
    # The former conversion: the whole image as float64, then each step a new full array.
    values = np.asarray(picture).astype(np.float64)
    pixels = np.clip(np.rint(np.nan_to_num(values / 257.0)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "L"), "16-bit values scaled to 8 bits"

if {way!r} == "baseline":
    normalise._to_8bit_gray = whole_image_float64
def high_water_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

# A process started by fork and exec may inherit its parent's high-water mark: reset it.
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
before = high_water_kb()
result = normalise.image_normalise(__import__("pathlib").Path({path!r}), (256, 256))
print(json.dumps({{"peak_kb": high_water_kb() - before, "sha256": result.sha256}}))
"""


def measured(way: str, path: Path) -> dict:
    code = CHILD.format(repo=str(REPOSITORY), way=way, path=str(path))
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=7000)
    side = parser.parse_args().side
    rng = np.random.default_rng(0)
    # A smooth gradient with noise: a PNG of modest size on disk, large once decoded.
    rows = np.linspace(0, 60000, side, dtype=np.float64)[:, None]
    values = (rows + rng.integers(0, 2000, size=(side, side))).astype(np.uint16)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large-16bit.png"
        Image.fromarray(values).save(path)  # uint16: mode I;16
        del values
        on_disk = path.stat().st_size
        decoded = side * side * 2
        new, old = measured("strips", path), measured("baseline", path)
    assert new["sha256"] == old["sha256"], "both conversions give the same pixels"
    mb = 1024 * 1024
    print(
        f"{side} x {side} 16-bit PNG: {on_disk / mb:.1f} MB on disk, {decoded / mb:.0f} MB decoded"
    )
    for name, result in (("strips (the import)", new), ("one float64 copy (baseline)", old)):
        peak = result["peak_kb"] * 1024
        print(f"  {name:30s} peak {peak / mb:7.0f} MB = {peak / decoded:4.1f}x the decoded size")
    print(f"strips / baseline peak: {new['peak_kb'] / old['peak_kb']:.2f}x")


if __name__ == "__main__":
    main()
