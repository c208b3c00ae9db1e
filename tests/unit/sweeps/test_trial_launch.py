"""How a trial is started: its command line, and the devices and CPU threads of its slot."""

from __future__ import annotations

import sys
from pathlib import Path

from expresso.sweeps.launch import slot_environment, trial_command


def test_each_slot_gets_its_share_of_the_cores_and_its_device_round_robin():
    envs = [slot_environment(slot, 3, ["0", "1"], cores=8) for slot in range(3)]
    assert envs == [
        {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "0"},
        {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "1"},
        {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": "0"},
    ]


def test_more_slots_than_cores_still_get_one_thread_and_no_devices_leaves_cuda_alone():
    assert slot_environment(5, 8, None, cores=2) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_a_trial_is_an_ordinary_train_into_its_folder_resumed_if_it_exists():
    command = trial_command(
        Path("exp.yaml"), ["optimizer.lr=0.1", "~sweep"], Path("runs/x/sweep-1/trial-002"), ["--offline"]
    )
    assert command == [
        sys.executable, "-m", "expresso", "train", "exp.yaml", "optimizer.lr=0.1", "~sweep",
        "--run-dir", "runs/x/sweep-1/trial-002", "--resume-if-exists", "--offline",
    ]  # fmt: skip
