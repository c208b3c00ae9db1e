"""Many runs of one experiment: sweeps (grid, random, Optuna), series and several configs, J trials at once.

spec.py reads what a sweep searches, plan.py which trials it runs, launch.py
how one trial runs (a process or a SLURM job, pinned to its devices and
threads), execute.py runs them and summary.py records the outcome;
study.py and report.py are the Optuna bridge (search and pruning across
processes). A layer above the assembly, below the commands: each trial is
an ordinary ``expresso train`` process.
"""
