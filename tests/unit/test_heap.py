"""The steady heap (heap.py): glibc serves a step-sized block from its heap once the thresholds are fixed, and a user's choice stays.

Each check runs in a fresh interpreter, whose glibc still has its starting
thresholds (128 KiB): an 8 MiB ``malloc`` there is a mapping of its own
(``mallinfo2().hblks`` counts one more) unless the thresholds were fixed,
when it comes from the heap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _on_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _on_glibc(), reason="the thresholds are glibc's")

# Prints whether an 8 MiB block was mapped on its own (True) or carved from the heap (False), after PRELUDE ran.
PROBE = """
import ctypes

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
PRELUDE
before = libc.mallinfo2().hblks
block = libc.malloc(8 * 2**20)
print(libc.mallinfo2().hblks > before)
"""


def mapped_on_its_own(prelude: str, **env: str) -> bool:
    code = PROBE.replace("PRELUDE", textwrap.dedent(prelude))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**environment, **env}, check=True
    )
    return done.stdout.split()[-1] == "True"


def test_a_fresh_process_maps_a_step_sized_block_on_its_own_which_the_steady_heap_serves_from_the_heap():
    assert mapped_on_its_own("")  # glibc's starting threshold: what every step's tensors would churn through
    assert not mapped_on_its_own("from expresso.heap import steady_heap\nassert steady_heap()")


def test_the_command_steadies_the_heap_first():
    assert not mapped_on_its_own("from expresso.cli import main\nassert main(['--version']) == 0")


def test_a_fit_through_the_python_api_steadies_the_heap():
    fit = """
    import torch
    from torch.utils.data import TensorDataset
    from expresso.engine import Trainer
    data = TensorDataset(torch.randn(8, 2), torch.randn(8, 1))
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(model=model, loss=torch.nn.MSELoss(), optimizer=optimizer, train_data=data, settings={"max_epochs": 1}).fit()
    """
    assert not mapped_on_its_own(fit)


def test_a_threshold_the_user_set_stays_theirs():
    chosen = "from expresso.heap import steady_heap\nassert not steady_heap()"
    assert mapped_on_its_own(chosen, MALLOC_MMAP_THRESHOLD_=str(1 * 2**20))
    assert mapped_on_its_own(chosen, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=1048576")
