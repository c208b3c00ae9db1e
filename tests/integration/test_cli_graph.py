"""``expresso graph``: the wiring of a config in data order, and drawn to .svg or .png; bad input exits 2 with one line.

Every case is a real process on the example configs (nothing is built, so
each takes about as long as ``expresso config --check``); they all start at
once (``ran``), so the cores overlap their imports.
"""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET

import pytest
from cli_runs import REPO, one_line_error, together

EXPERIMENTS = "examples/digits/configs/experiments"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


CYCLE = """\
    models:
      a: {class: expresso.models.Dense, in_features: 64, out_features: 64}
      b: {class: expresso.models.Dense, in_features: 64, out_features: 64}
    graph:
      - {model: a, inputs: [u], outputs: [v]}
      - {model: b, inputs: [v], outputs: [u]}
    losses:
      l: {class: torch.nn.MSELoss, inputs: [v, x]}
    optimizers:
      o: {class: torch.optim.SGD, lr: 0.1}
    dataset: {class: expresso.data.Digits}
    """


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict:
    """Every graph command of this file, run at once: results by name, and the folder the drawings go to."""
    out = tmp_path_factory.mktemp("graph")
    blocked = out / "blocked"
    (blocked / "matplotlib").mkdir(parents=True)
    (blocked / "matplotlib" / "__init__.py").write_text("raise ImportError('matplotlib is blocked in this test')\n")
    no_matplotlib = {"PYTHONPATH": os.pathsep.join(filter(None, [str(blocked), os.environ.get("PYTHONPATH")]))}
    (out / "cycle").mkdir()
    (out / "cycle" / "cycle.yaml").write_text(textwrap.dedent(CYCLE))
    commands = {
        "ae": [f"{EXPERIMENTS}/digits_ae_classifier.yaml"],
        "gan": [f"{EXPERIMENTS}/digits_gan.yaml"],
        "plain": [f"{EXPERIMENTS}/digits_mlp.yaml", "trainer.max_epochs=3"],
        "svg": [f"{EXPERIMENTS}/digits_gan.yaml", "--output", out / "g.svg"],
        "png": [f"{EXPERIMENTS}/digits_ae_classifier.yaml", "--output", out / "g.png", "trainer.seed=1"],
        "txt": [f"{EXPERIMENTS}/digits_mlp.yaml", "--output", out / "g.txt"],
        "no folder": [f"{EXPERIMENTS}/digits_mlp.yaml", "--output", out / "no" / "g.svg"],
        "unbuildable": [f"{EXPERIMENTS}/digits_ae_classifier.yaml", "models.encoder.in_features=-1"],
    }
    started = {name: (["graph", *args], None) for name, args in commands.items()}
    started["described without matplotlib"] = (["graph", f"{EXPERIMENTS}/digits_gan.yaml"], no_matplotlib)
    started["drawn without matplotlib"] = (
        ["graph", f"{EXPERIMENTS}/digits_gan.yaml", "--output", out / "blocked.svg"],
        no_matplotlib,
    )
    results = together(started, cwd=REPO)
    cycles = together(
        {
            name: (["graph", "cycle.yaml", *output], None)
            for name, output in (("cycle", []), ("cycle drawn", ["--output", "g.svg"]))
        },
        cwd=out / "cycle",
    )
    return {"results": {**results, **cycles}, "out": out}


def graph(ran, name: str) -> str:
    result = ran["results"][name]
    assert result.returncode == 0, result.stderr
    return result.stdout


def nodes(stdout: str) -> list[str]:
    """The node lines, as printed (data order), between ``nodes (data order):`` and ``losses:``."""
    lines = stdout.splitlines()
    start = lines.index("nodes (data order):") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("losses: "))
    return lines[start:end]


def line(stdout: str, prefix: str) -> str:
    [found] = [text for text in stdout.splitlines() if text.startswith(prefix)]
    return found


def test_autoencoder_classifier(ran):
    out = graph(ran, "ae")
    assert (
        line(out, "models: ")
        == "models: encoder (expresso.models.Dense), decoder (expresso.models.Dense), classifier (expresso.models.MLP)"
    )
    assert nodes(out) == [
        "  encoder     x -> z",
        "  decoder     z -> x_hat",
        "  classifier  z -> y_hat",
    ]
    assert line(out, "losses: ") == "losses: reconstruction(x_hat, x) x1.0, classification(y_hat, y) x1.0"
    assert (
        line(out, "optimizers: ")
        == "optimizers: autoencoder (torch.optim.AdamW) over encoder, decoder; classifier (torch.optim.AdamW) over classifier"
    )
    assert (
        line(out, "pipelines: ")
        == "pipelines: reconstruct [digits]: losses reconstruction; classify [digits]: losses classification, metrics acc"
    )
    assert line(out, "stages: ") == (
        "stages: 1 pretrain (train reconstruct, 20 epochs); 2 probe (train classify, frozen encoder, 15 epochs); "
        "3 finetune (train classify, 15 epochs, early stopping val/classify/acc mode=max patience=5)"
    )


def test_gan_nodes_in_data_order_with_the_detached_input(ran):
    out = graph(ran, "gan")
    assert nodes(out) == [
        "  generator                        y -> x_fake",
        "  judge_real (discriminator)       x, y -> d_real",
        "  judge_fake (discriminator)       x_fake (detached), y -> d_fake",
        "  judge_generated (discriminator)  x_fake, y -> d_generated",
    ]
    assert line(out, "losses: ") == "losses: real(d_real) x1.0, fake(d_fake) x1.0, fool(d_generated) x1.0"
    assert (
        line(out, "optimizers: ")
        == "optimizers: generator (torch.optim.Adam) over generator; discriminator (torch.optim.Adam) over discriminator"
    )
    assert (
        line(out, "pipelines: ")
        == "pipelines: gan [dataset]: updates discriminator(real, fake -> discriminator), generator(fool -> generator)"
    )
    assert line(out, "stages: ") == "stages: 1 main (train gan, 40 epochs = trainer.max_epochs)"


def test_plain_config_is_the_one_node_graph_and_overrides_apply(ran):
    out = graph(ran, "plain")
    assert line(out, "models: ") == "models: model (expresso.models.MLP)"
    assert nodes(out) == ["  model  x -> y_hat"]
    assert line(out, "losses: ") == "losses: loss(y_hat, y) x1.0"
    assert (
        line(out, "optimizers: ")
        == "optimizers: optimizer (torch.optim.AdamW, scheduler torch.optim.lr_scheduler.CosineAnnealingLR) over model"
    )
    assert line(out, "pipelines: ") == "pipelines: main [dataset]: losses loss, metrics acc"
    assert line(out, "stages: ") == "stages: 1 main (train main, 3 epochs = trainer.max_epochs)"


def test_svg_drawing(ran):
    target = ran["out"] / "g.svg"
    out = graph(ran, "svg")
    assert out.splitlines()[-1] == f"written: {target}"
    root = ET.parse(target).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {"".join(element.itertext()).strip() for element in root.iter() if element.tag.endswith("}text")}
    assert {"generator", "judge_real", "judge_fake", "judge_generated", "x_fake", "d_real"} <= texts
    assert any("optimizer discriminator" in text for text in texts)


def test_png_drawing_with_overrides_after_the_flag(ran):
    target = ran["out"] / "g.png"
    out = graph(ran, "png")
    assert f"written: {target}" in out
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_other_suffix_is_a_usage_error(ran):
    result = ran["results"]["txt"]
    error = one_line_error(result)
    assert "'.txt'" in error and ".svg or .png" in error
    assert not (ran["out"] / "g.txt").exists() and result.stdout == ""


def test_missing_output_folder_is_a_usage_error(ran):
    result = ran["results"]["no folder"]
    assert "folder" in one_line_error(result) and result.stdout == ""


def test_nothing_is_built(ran):
    """An encoder that cannot be built (a negative size) still describes: only `train` builds models."""
    out = graph(ran, "unbuildable")
    assert nodes(out)[0] == "  encoder     x -> z"


def test_matplotlib_is_imported_only_to_draw(ran):
    described = ran["results"]["described without matplotlib"]
    assert described.returncode == 0, described.stderr
    drawn = ran["results"]["drawn without matplotlib"]
    assert "needs matplotlib" in one_line_error(drawn) and drawn.stdout == ""


@pytest.mark.parametrize("name", ["cycle", "cycle drawn"])
def test_a_cycle_fails_before_anything_is_drawn(ran, name):
    result = ran["results"][name]
    error = one_line_error(result)
    assert error.endswith("cycle.yaml: graph.0: graph nodes form a cycle: a reads 'u' from b, b reads 'v' from a")
    assert result.stdout == "" and not (ran["out"] / "cycle" / "g.svg").exists()
