"""What the benchmarks share: the repository on the import path, the best of several timed
runs, and (for those that need Django) a throwaway test database around a run."""

import os
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))


def best_of(function, repeats: int):
    """(the shortest of `repeats` timed calls of function, in seconds, and its last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def on_a_test_database(main) -> None:
    """Run main() with Django set up on a throwaway test database (SQLite in the temp folder
    by default, or a test_... database next to DATABASE_URL's), deleted at the end."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hype.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment(debug=False)
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        main()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
