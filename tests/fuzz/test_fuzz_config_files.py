"""Random config files: ``check(load_config(file, check=True))`` returns a Config or raises ConfigError, nothing else.

Trees are random, but shaped like configs most of the time (expresso's own
keys, components with real and odd ``class`` paths, graph nodes, pipelines and
stages naming each other), written as YAML, JSON or Python, beside a second
random file they may reference or extend (and that may reference them back).
Raw text and bytes stand in for files that are not configs at all, and the
digits examples, mutated at random keys, for configs that are almost right.
What loads must print (YAML and JSON) and load again from its printout.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path

import yaml
from fuzz_support import (
    EXAMPLE_CONFIGS,
    YAML_FRAGMENTS,
    config_trees,
    isolated,
    keys,
    scalars,
    trees,
    write_tree,
    yaml_text,
)
from hypothesis import example, given
from hypothesis import strategies as st

from expresso import load_config
from expresso.assembly import check
from expresso.config import ConfigError

# (file suffix, how the tree is written)
FORMATS = [(".yaml", "yaml-block"), (".yaml", "yaml-flow"), (".json", "json"), (".py", "python")]
formats = st.sampled_from(FORMATS)


def load_or_config_error(path: Path):
    """The property: a Config or a ConfigError; the Config prints, and its printout loads to the same tree."""
    try:
        config = check(load_config(path, check=True))
    except ConfigError as exc:
        assert str(exc).strip()
        return None
    printed = config.to_yaml()
    printed.encode("utf-8")  # what `expresso config` writes to stdout, which may not hold half a surrogate pair
    config.to_json().encode("utf-8")
    again = path.parent / "printed.yaml"
    again.write_text(printed, encoding="utf-8")
    reloaded = check(load_config(again, check=True))
    assert reloaded.to_yaml() == printed
    return config


@given(tree=config_trees, other=config_trees, fmt=formats, other_fmt=formats)
@example(
    tree={"class": "torch.optim.AdamW"}, other={}, fmt=FORMATS[0], other_fmt=FORMATS[0]
)  # was: IndexError in check
# was: KeyValidationError from OmegaConf (5 and "5" merged into one mapping)
@example(
    tree={"extends": "other.json", "task": {5: "a", "b": "${name}"}},
    other={"task": {"5": "b"}},
    fmt=FORMATS[0],
    other_fmt=FORMATS[2],
)
# was: printed as '\x85' in single quotes, which YAML reads back as a space
@example(tree={"name": "\x85", "task": {"a": "b\u2028"}}, other={}, fmt=FORMATS[2], other_fmt=FORMATS[0])
def test_random_config_trees_load_or_raise_config_error(tree, other, fmt, other_fmt):
    with isolated() as folder:
        main = folder / f"main{fmt[0]}"
        write_tree(main, tree, fmt[1])
        write_tree(folder / f"other{other_fmt[0]}", other, other_fmt[1])
        (folder / "folder.yaml").mkdir()
        load_or_config_error(main)


@given(
    content=st.one_of(yaml_text, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
    suffix=st.sampled_from([".yaml", ".yml", ".json"]),
)
@example(content="task: " + "[" * 2000 + "]" * 2000, suffix=".yaml")
@example(content='{"task": ' + "[" * 3000 + "]" * 3000 + "}", suffix=".json")
@example(content="a: &x [*x]", suffix=".yaml")
@example(content="task: {a: " + "9" * 5000 + "}", suffix=".yaml")
@example(content='{"task": {"a": "\\ud800"}}', suffix=".json")
@example(content='{"task": {"a": ' + "9" * 5000 + "}}", suffix=".json")
def test_random_text_as_a_config_file(content, suffix):
    with isolated() as folder:
        main = folder / f"main{suffix}"
        main.write_text(content, encoding="utf-8", errors="surrogatepass")
        load_or_config_error(main)


@given(data=st.binary(max_size=300), suffix=st.sampled_from([".yaml", ".json", ".py"]))
def test_random_bytes_as_a_config_file(data, suffix):
    with isolated() as folder:
        main = folder / f"main{suffix}"
        main.write_bytes(data)
        load_or_config_error(main)


@given(
    fragment=st.sampled_from(YAML_FRAGMENTS) | yaml_text,
    key=st.sampled_from(["task", "trainer", "model", "name", "graph", "bogus"]),
)
def test_yaml_fragments_as_values(fragment, key):
    with isolated() as folder:
        main = folder / "main.yaml"
        indented = fragment.replace("\n", "\n  ")
        main.write_text(f"{key}:\n  {indented}\n", encoding="utf-8", errors="surrogatepass")
        load_or_config_error(main)


# -- the examples, mutated ------------------------------------------------------------------------------
EXPERIMENTS = ["digits_mlp.yaml", "digits_ae_classifier.yaml"]


@st.composite
def mutations(draw, tree):
    """``tree`` with one to three random edits: a value replaced, a key removed, added or renamed, a list item added."""
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 3))):
        node = tree
        # Walk down a random path through mappings and lists; stop anywhere.
        while node and draw(st.booleans()):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else list(range(len(node)))))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        action = draw(st.sampled_from(["set", "delete", "add", "rename", "append"]))
        if isinstance(node, list):
            if action == "append" or not node:
                node.append(draw(trees))
            elif action == "delete":
                node.pop(draw(st.integers(0, len(node) - 1)))
            else:
                node[draw(st.integers(0, len(node) - 1))] = draw(st.one_of(scalars, trees))
        elif action == "add" or not node:
            node[draw(keys)] = draw(st.one_of(scalars, trees))
        else:
            key = draw(st.sampled_from(list(node)))
            if action == "delete":
                del node[key]
            elif action == "rename":
                node[draw(keys)] = node.pop(key)
            else:
                node[key] = draw(st.one_of(scalars, trees))
    return tree


@functools.cache
def example_trees(name: str) -> tuple[dict, dict]:
    """An experiment's own tree (with its file references) and its resolved tree (everything inline)."""
    path = EXAMPLE_CONFIGS / "experiments" / name
    return yaml.safe_load(path.read_text()), load_config(path).to_dict()


@given(
    name=st.sampled_from(EXPERIMENTS),
    resolved=st.booleans(),
    suffix=st.sampled_from([".yaml", ".json"]),
    data=st.data(),
)
def test_mutated_examples_load_or_raise_config_error(project_copy, name, resolved, suffix, data):
    tree = data.draw(mutations(example_trees(name)[resolved]), label="mutated")
    with isolated() as folder:
        # Inside a configs/ folder, so the experiment's relative references resolve as in the example.
        shutil.copytree(project_copy / "configs", folder / "configs")
        path = folder / "configs" / "experiments" / f"fuzzed{suffix}"
        path.write_text(
            json.dumps(tree) if suffix == ".json" else yaml.safe_dump(tree, sort_keys=False), encoding="utf-8"
        )
        load_or_config_error(path)
