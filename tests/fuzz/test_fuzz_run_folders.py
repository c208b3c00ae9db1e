"""A run folder whose config.yaml or run.json is damaged: the run commands exit 0 or 2, never a traceback.

``expresso config RUN/config.yaml`` is among them: loading a run's config
reads run.json's ``project_root`` (config/loader.py).
"""

from __future__ import annotations

import json
import shutil
import socket

import yaml
from fuzz_support import assert_clean_failure, at_most, config_trees, isolated, quiet_main, trees, yaml_text
from hypothesis import example, given
from hypothesis import strategies as st

COMMANDS = {
    "eval": ["eval", "{run}"],
    "resume": ["resume", "{run}"],
    "predict": ["predict", "{run}"],
    "runs": ["runs", "{root}"],
    "compare": ["runs", "compare", "{run}", "{other}"],  # the damaged run beside the intact one
    "config": ["config", "{run}/config.yaml", "--check"],
}


def run_with(trained_run, name: str, content: bytes, command: str) -> None:
    with isolated() as folder:
        run = folder / "runs" / "exp" / "run"
        shutil.copytree(trained_run, run)
        (run / name).write_bytes(content)
        code, out, err = quiet_main(
            [part.format(run=run, root=folder / "runs", other=trained_run) for part in COMMANDS[command]]
        )
        assert_clean_failure(code, err)


@at_most(3000)
@given(
    content=st.one_of(
        config_trees.map(lambda tree: yaml.safe_dump(tree).encode()),
        yaml_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.binary(max_size=300),
    ),
    command=st.sampled_from(sorted(COMMANDS)),
)
@example(content=b"class: torch.optim.AdamW\n", command="eval")
@example(content=b"!!float ;", command="runs")
def test_damaged_run_config_exits_0_or_2(trained_run, content, command):
    run_with(trained_run, "config.yaml", content, command)


@at_most(3000)
@given(
    content=st.one_of(st.binary(max_size=300), trees.map(lambda tree: json.dumps(tree).encode())),
    command=st.sampled_from(sorted(COMMANDS)),
)
@example(content=b"", command="eval")
@example(content=b"[]", command="runs")
@example(content=b'{"name": null}', command="runs")
@example(content=b'{"status": null, "run_id": 7}', command="runs")
@example(
    content=json.dumps({"status": "running", "host": socket.gethostname(), "pid": 10**30}).encode(), command="runs"
)
@example(content=b'{"status": "failed", "error": "KeyError"}', command="runs")
@example(content=b'{"status": "failed", "error": {"type": ["KeyError"], "message": 5}}', command="runs")
@example(content=b'{"project_root": 5}', command="resume")
@example(content=b'{"project_root": 5}', command="config")
@example(content=b'{"project_root": "' + b"x" * 300 + b'"}', command="config")
def test_damaged_run_record_exits_0_or_2(trained_run, content, command):
    run_with(trained_run, "run.json", content, command)
