"""Many runs of one experiment: groups over seeds and sweeps, their results, and searches.

- :mod:`.groups`: ``condgan train --seeds 0-7 --sweep KEY=v1,v2``: the K runs of a group trained one
  after another in one process, each a run directory of its own, listed in ``GROUP/group.json``;
- :mod:`.summary`: a metric over the runs of a group (mean, standard deviation, min, max, the best run);
- :mod:`.space`: a search space from a config file's ``[search]`` table, checked before any trial;
- :mod:`.search`: ``condgan search``: an Optuna study stored in SQLite beside its trials' run directories;
- :mod:`.ray_backend`: the same search on Ray Tune (``--backend ray``).

Optuna and Ray are optional: ``pip install condgan[search]`` / ``condgan[ray]``.
"""
