"""`train`'s flags are generated from TrainConfig's fields and docstrings (astrobio.cli.config_flags)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from typing import Any, Optional

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.cli.config_flags import attribute_docs, field_flags, with_config_flags
from astrobio.training import setup
from astrobio.training.config import TrainConfig


@dataclass
class Toy:
    count: int = 3
    """How many, an
    integer."""
    ratio: float = 0.5
    """A fraction."""
    flag: bool = False
    """A switch."""
    names: tuple[str, ...] = ("a",)
    """Some names."""
    pair: tuple[float, float] = (1.0, 2.0)
    label: str = ""
    """A label."""


@dataclass
class ToyPlus(Toy):
    extra_field: Optional[int] = None
    """Added later: no command-line code needed."""


def _toy_app(cls: type) -> typer.Typer:
    toy = typer.Typer(add_completion=False)

    @toy.command()
    @with_config_flags(cls, [inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                                               default=typer.Argument(...))])
    def run(name: str, overrides: dict[str, Any]) -> None:
        """Echo what was given."""
        typer.echo(json.dumps({"name": name, **overrides}))

    return toy


def _options(command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")} - {"--help"}


def test_docstrings_types_and_defaults_come_from_the_dataclass():
    assert attribute_docs(Toy) == {"count": "How many, an integer.", "ratio": "A fraction.", "flag": "A switch.",
                                   "names": "Some names.", "label": "A label."}
    flags = {f.name: f for f in field_flags(Toy)}
    assert [(f.flag, f.kind, f.element, f.default) for f in flags.values()] == [
        ("--count", int, None, 3), ("--ratio", float, None, 0.5), ("--flag", bool, None, False),
        ("--names", tuple, str, ("a",)), ("--pair", tuple, float, (1.0, 2.0)), ("--label", str, None, "")]
    help_text = CliRunner().invoke(_toy_app(Toy), ["--help"], terminal_width=200).output
    assert "How many, an integer." in help_text and "[default: (a)]" in help_text


def test_given_flags_are_parsed_and_the_others_are_none():
    res = CliRunner().invoke(_toy_app(Toy), ["x", "--ratio", "0.25", "--names", "b, c", "--no-flag",
                                             "--pair", "3,4"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"name": "x", "count": None, "ratio": 0.25, "flag": False,
                                      "names": ["b", "c"], "pair": [3.0, 4.0], "label": None}


def test_a_new_field_gets_a_flag_without_cli_code():
    before, after = _options(get_command(_toy_app(Toy))), _options(get_command(_toy_app(ToyPlus)))
    assert after - before == {"--extra-field"}
    assert before == {"--count", "--ratio", "--flag", "--no-flag", "--names", "--pair", "--label"}
    res = CliRunner().invoke(_toy_app(ToyPlus), ["x", "--extra-field", "7"])
    assert json.loads(res.output)["extra_field"] == 7
    assert "Added later: no command-line code needed." in attribute_docs(ToyPlus)["extra_field"]


def test_a_list_field_is_a_comma_list_too():
    @dataclass
    class WithList:
        steps: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
        """Steps."""

    (flag,) = field_flags(WithList)
    assert (flag.kind, flag.element, flag.default, flag.parse("3, 4")) == (list, int, [1, 2], [3, 4])


def test_unsupported_types_and_name_clashes_are_refused_when_building():
    @dataclass
    class Bad:
        table: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match="field 'table'"):
        field_flags(Bad)
    with pytest.raises(TypeError, match=r"\['count'\] clash"):
        with_config_flags(Toy, [inspect.Parameter("count", inspect.Parameter.KEYWORD_ONLY, default=1)])


def test_train_has_a_flag_for_every_trainconfig_field_and_its_own_options():
    train = get_command(app).commands["train"]
    fields = dataclasses.fields(TrainConfig)
    expected = {"--" + f.name.replace("_", "-") for f in fields}
    expected |= {"--no-" + f.name.replace("_", "-") for f in fields if f.type in (bool, "bool")}
    assert _options(train) == expected | {"--out", "--config", "--resume"}
    docs = attribute_docs(TrainConfig)
    assert set(docs) == {f.name for f in fields} and all(docs.values())  # every field is documented
    assert [p.name for p in train.params if not p.opts[0].startswith("--")] == ["store"]


@pytest.fixture
def captured(monkeypatch):
    """What `astrobio train` would run, without training."""
    seen = {}

    def fake_run(cfg, store, out, resume=None):
        seen.update(cfg=cfg, store=store, out=out, resume=resume)
        return {"steps": 0}

    monkeypatch.setattr(setup, "run_training", fake_run)
    return seen


def test_loader_workers_and_every_kind_of_flag_reach_the_config(captured, tmp_path):
    res = CliRunner().invoke(app, ["train", str(tmp_path / "store"), "--out", str(tmp_path / "run"),
                                   "--loader-workers", "3", "--betas", "0.8,0.9", "--lr", "0.002",
                                   "--deterministic", "--lora-rank", "2", "--lora-targets", "q_proj,v_proj",
                                   "--grad-accum-steps", "4"])
    assert res.exit_code == 0, res.output
    cfg = captured["cfg"]
    assert (cfg.loader_workers, cfg.betas, cfg.lr, cfg.deterministic, cfg.lora_rank, cfg.lora_targets,
            cfg.grad_accum_steps) == (3, (0.8, 0.9), 0.002, True, 2, ("q_proj", "v_proj"), 4)
    assert captured["store"] == tmp_path / "store" and captured["out"] == tmp_path / "run"
    assert cfg.preset == "tiny" and cfg.max_steps == TrainConfig.for_preset("tiny").max_steps  # not given


def test_flags_override_the_yaml_config_which_overrides_the_preset(captured, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preset: small\nlr: 0.002\nbatch_size: 4\nloader_workers: 2\n")
    res = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(path),
                                   "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    small = TrainConfig.for_preset("small")
    cfg = captured["cfg"]
    assert (cfg.preset, cfg.lr, cfg.batch_size, cfg.loader_workers, cfg.max_steps) == \
        ("small", 0.002, 2, 2, small.max_steps)
