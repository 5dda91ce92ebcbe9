"""``python -m covid_ct_scan_images``: the ``covid-ct`` command line."""

from .cli import main

raise SystemExit(main())
