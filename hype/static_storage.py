"""How the static files are stored once collected (DEBUG off): WhiteNoise's compressed copies
under hashed names, with the rater's and the dashboard's ES modules pointing at each other's
hashed names too."""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticStorage(CompressedManifestStaticFilesStorage):
    """CompressedManifestStaticFilesStorage, rewriting `import ... from "./x.js"` as well, and
    leaving source map comments alone.

    Without the imports rewritten only the page's entry script gets a hashed name: the modules
    it imports keep their plain names and WhiteNoise's short cache, so after an upgrade a
    browser could run the new rater.js against an old module it still holds. Source maps are
    only fetched by a browser's developer tools, and the vendored Chart.js names one it does
    not ship: hashing that reference would fail collectstatic over a file nobody needs."""

    support_js_module_import_aggregation = True
    patterns = tuple(
        (files, tuple(p for p in rewrites if "sourceMappingURL" not in str(p)))
        for files, rewrites in ManifestStaticFilesStorage.patterns
    )
