"""``python -m condgan``: the same as the ``condgan`` command.

A folder named ``condgan`` in the current directory that lacks condgan's files shadows the
installed package; that is reported in one line naming what was imported and from where.
"""

import sys

try:
    from .cli import main
except ImportError as exc:  # the package imported is not condgan's (see condgan.cli.package_problem)
    package = sys.modules.get("condgan")
    where = getattr(package, "__file__", None) or ", ".join(map(str, getattr(package, "__path__", []))) or "?"
    print(f"condgan: error: the 'condgan' package imported from {where} lacks condgan's files ({exc}); a folder named "
          "condgan in the current directory shadows the installed package: run condgan from another folder", file=sys.stderr)
    raise SystemExit(1) from None

if __name__ == "__main__":
    raise SystemExit(main())
