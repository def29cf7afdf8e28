"""docs/guide/yarn.md's command lines: the guide is the one place they are written, this test reads them from it.

The lines that YARN alone can run (cluster deploy mode, plain ``spark-submit
--master yarn``) are checked as text here: that they parse, ship the archive
``rxspark pack`` made, and name the executors' Python exactly as rxspark's own
code does (``session.python_env_config``). The lines that run anywhere are
run in test_sharenothing.py against the share-nothing standalone cluster,
with only the master changed (:func:`on_standalone`).
"""

from __future__ import annotations

import os
import re
import shlex

from rxspark.cli import _parser as cli_parser
from rxspark.contexts.spark import session as sessions

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUIDE = os.path.join(REPO, "docs", "guide", "yarn.md")


def commands() -> list[list[str]]:
    """Every ``$ ...`` line of the guide's console blocks, split as a shell would (comments dropped)."""
    with open(GUIDE) as f:
        text = f.read()
    lines = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        lines += [shlex.split(re.split(r"\s+#\s", line[2:])[0]) for line in block.splitlines() if line.startswith("$ ")]
    return lines


def submit_lines() -> list[list[str]]:
    return [c for c in commands() if c[0] == "./spark-submit.sh"]


def pack_lines() -> list[list[str]]:
    return [c for c in commands() if c[:2] == ["rxspark", "pack"]]


def on_standalone(command: list[str], master: str) -> list[str]:
    """A ``--profile yarn`` line for a standalone master: the profile and the master are all that differ."""
    i = command.index("--profile")
    assert command[i + 1] == "yarn"
    return [*command[:i], "--profile", "standalone", "--master", master, *command[i + 2 :]]


def _value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def test_the_guide_packs_one_archive_and_every_submit_line_ships_it():
    packs = pack_lines()
    assert packs, "the guide shows `rxspark pack`"
    outputs = {_value(c, "--output") for c in packs}
    assert len(outputs) == 1
    archive = outputs.pop()
    for command in packs:
        parsed = cli_parser().parse_args(command[1:])
        assert parsed.output == archive
    submits = submit_lines()
    assert {_value(c, "--python-env") for c in submits} == {archive}
    clients = [c for c in submits if "--deploy-mode" not in c]
    clusters = [c for c in submits if "--deploy-mode" in c and _value(c, "--deploy-mode") == "cluster"]
    assert clients and clusters, "a client-mode line (run on the standalone cluster) and a cluster deploy mode line"
    for command in submits:
        script = next(i for i, word in enumerate(command) if word.endswith(".py"))
        assert os.path.exists(os.path.join(REPO, command[script]))
        assert {"--profile", "--python-env"} <= set(command[:script])  # the wrapper's options come before the script


def test_the_plain_spark_submit_line_ships_the_archive_as_rxspark_does():
    plain = [c for c in commands() if c[0] == "spark-submit"]
    assert len(plain) == 1
    command = plain[0]
    archive = _value(pack_lines()[0], "--output")
    expected = sessions.python_env_config(archive)
    assert _value(command, "--archives") == expected["spark.archives"] == f"{archive}#environment"
    confs = dict(_value_pair(command[i + 1]) for i, word in enumerate(command) if word == "--conf")
    assert confs["spark.pyspark.python"] == expected["spark.pyspark.python"] == sessions.ENV_PYTHON
    assert _value(command, "--master") == "yarn"


def _value_pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def test_the_wrapper_accepts_every_option_the_guide_gives_it():
    with open(os.path.join(REPO, "spark-submit.sh")) as f:
        wrapper = f.read()
    for command in submit_lines():
        for word in command[1:]:
            if word in ("--profile", "--python-env", "--python"):
                assert f"        {word})" in wrapper, word
    assert os.path.exists(os.path.join(REPO, "conf", "spark-defaults.yarn.conf"))
