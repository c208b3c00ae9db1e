"""`expresso predict` refuses bad arguments before it loads a run or predicts anything."""

from expresso.cli import main


def test_an_unsupported_output_type_exits_2_before_any_work(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no-such-run"), "--output", "p.txt"]) == 2
    assert capsys.readouterr().err == "expresso: error: p.txt: unsupported output type '.txt'; expected .csv or .npy\n"


def test_an_extra_argument_with_an_unreadable_value_exits_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no-such-run"), "scale=[1,"]) == 2
    assert capsys.readouterr().err.startswith(
        "expresso: error: extra argument 'scale=[1,': cannot read the value as YAML"
    )


def test_an_extra_argument_without_equals_exits_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no-such-run"), "scale"]) == 2
    assert capsys.readouterr().err == "expresso: error: extra argument 'scale': expected KEY=VALUE\n"


def test_inputs_prepared_without_an_input_file_exits_2(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no-such-run"), "--inputs-prepared"]) == 2
    assert capsys.readouterr().err == (
        "expresso: error: --inputs-prepared describes the --input file; without --input, predict reads the dataset's --split\n"
    )
