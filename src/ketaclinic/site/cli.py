"""The `ketaclinic` command: Django's management commands with the project's settings.

ketaclinic migrate | serve | worker | demo | seed | createclinic | createstaff
ketaclinic audit verify | permissions | ...
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.site.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else ["ketaclinic", *argv])
    if len(args) > 1 and args[1] == "worker":
        # huey's consumer, under the name staff will look for.
        args[1] = "run_huey"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
