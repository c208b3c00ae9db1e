"""Runs read back for analysis: a row per run folder (``expresso runs``, ``runs compare``) and pandas tables of them.

``read.py`` reads a run folder's record and config into one flat row and
needs nothing beyond PyYAML; ``frames.py`` turns rows and metrics.csv files
into pandas DataFrames (``expresso.load_runs``, ``expresso.load_history``)
and imports pandas only when called, so ``import expresso`` and
``expresso runs`` load neither pandas nor torch. ``expresso report``'s page:
groups.py reads the sweeps and runs under a folder, figures.py draws them
(matplotlib, imported when drawing), report.py writes the HTML.
"""
