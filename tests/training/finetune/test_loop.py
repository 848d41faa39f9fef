"""The learning loop of docs/learning.md, for real: a child server on loopback, photos through
/v1/classify and /v1/feedback into a real store, digits-train --fine-tune, the shadow, promote,
the same photos answered by the new version, rollback.

Small sizes: the session's tiny softmax (one epoch on 1,800 images) and ``rotation`` photos
(digits turned up to 20 degrees), which it reads at about 0.63. At these sizes the promotion
gate passes honestly (measured while writing this: MNIST test 0.722 -> 0.827 on 1,000 images,
the 40 held-out corrections 0.500 -> 0.675, real handwriting 0.37 -> 0.53 on 100 scans): an
undertrained model gains from the replayed MNIST and from the photos alike.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from string import Template

import pytest

from clients.server_process import running_server, serve_argv
from serving.feedback.store import open_store
from serving.repository.policy import read_policy
from training.finetune.loop import RESULT_FILE, main
from training.publish import existing_versions

pytestmark = pytest.mark.train

ROOT = Path(__file__).resolve().parents[3]
TUTORIAL = ROOT / "docs" / "learning.md"
CONDITION, COUNT = "rotation", 200
# The fine-tune at test size: 1,000 MNIST test images and every 20th real-handwriting scan
# scored; 5 epochs at 0.003 (RMSprop) so that 160 photos + 640 replayed digits move the model.
TUNE = [
    "--epochs", "5", "--learning-rate", "0.003", "--min-feedback", "20",
    "--test-subset", "1000", "--handwriting-stride", "20", "--quiet",
]  # fmt: skip


def _block(marker: str) -> str:
    """The ```sh block right after ``<!-- marker -->`` in the tutorial."""
    text = TUTORIAL.read_text()
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", text, re.S)
    assert match is not None, f"{TUTORIAL}: no sh block after <!-- {marker} -->"
    return match[1]


def _serve_flags(block: str, values: dict[str, str]) -> list[str]:
    """The flags of the block's ``digits-serve`` command, its variables filled in."""
    joined = block.replace("\\\n", " ")
    [line] = [ln for ln in joined.splitlines() if ln.lstrip().startswith("digits-serve ")]
    words = shlex.split(line.rstrip(" &"))[1:]
    return [Template(w).substitute(values) for w in words]


def test_the_tutorial_by_hand_against_a_real_server_and_sqlite(
    published_softmax: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(published_softmax, work / "repository")  # the block's `cp -r`
    values = {
        "MODEL": "softmax",
        "CONDITION": CONDITION,
        "COUNT": str(COUNT),
        "TUNE": " ".join(TUNE),
        "WORK": str(work),
        "DB": f"sqlite:///{work / 'feedback.db'}",
    }
    server_block = _block("by-hand-server")
    # The block's own variables are the ones the loop block uses.
    for name in ("MODEL", "CONDITION", "COUNT", "TUNE", "WORK", "DB", "URL", "METRICS"):
        assert re.search(rf"(^|\s){name}=", server_block, re.M), name
    flags = _serve_flags(server_block, values)
    assert flags[:2] == ["--model-repository", str(work / "repository")]

    # The tutorial's server, on loopback ports the OS picks (its flags come last and win).
    with running_server(serve_argv(work / "repository", *flags), name="tutorial") as server:
        env = {
            **os.environ,
            **values,
            "URL": f"http://127.0.0.1:{server.ports.http}",
            "METRICS": f"http://127.0.0.1:{server.ports.metrics}",
            # digits-eval, digits-train, digits-feedback and python of this environment.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _block("by-hand-loop")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr[-3000:]}"

    # One photo by curl, answered and then rated by its request id...
    assert re.search(r'"verdict": ?"(correct|corrected)"', out), out
    # ...then sets sent and rated by v1, fine-tuned, published as v2 beside it, shadowed...
    sent = re.findall(r"^softmax: (\d+)/(\d+) read right .*answered by (.*?)(;|$)", out, re.M)
    assert [(n, by) for _, n, by, _ in sent] == [
        (str(COUNT), f"v1: {COUNT}"),  # first set
        (str(COUNT), f"v1: {COUNT}"),  # fresh set, while v2 shadows
        (str(COUNT), f"v2: {COUNT}"),  # first set again, after the promotion
    ]
    assert existing_versions(work / "repository" / "softmax") == [1, 2]
    manifest = json.loads((work / "repository/softmax/2/model.json").read_text())
    assert manifest["training"]["fine_tuned_from"] == "softmax/1"
    agreed = re.findall(
        r'^digits_shadow_answers_total\{[^}]*candidate="2"[^}]*outcome="(agree|disagree)"'
        r"[^}]*\} (\d+)",
        out,
        re.M,
    )
    assert agreed and sum(float(n) for _, n in agreed) > 0, out
    assert "shadow candidates on the same rated answers" in out
    # ...promoted (v2 answered the first set again above), then rolled back.
    assert "softmax: served version 2, rollback to 1" in out
    policy = read_policy(work / "repository" / "softmax")
    assert (policy.served, policy.previous) == ("1", "2")


def _loop(work: Path, repository: Path, *extra: str) -> int:
    return main(
        ["--work", str(work), "--repository", str(repository), "--model", "softmax",
         "--condition", CONDITION, "--count", str(COUNT), *extra, "--", *TUNE]
    )  # fmt: skip


def test_one_command_on_postgres_promotes_and_rolls_back(
    published_softmax: Path, tmp_path: Path, postgres_url: str
) -> None:
    work = tmp_path / "loop"
    assert _loop(work, published_softmax, "--feedback", postgres_url, "--rollback") == 0
    seen = json.loads((work / RESULT_FILE).read_text())

    assert seen["served_before"] == "1" and seen["first"]["versions"] == {"1": COUNT}
    assert seen["fine_tune_status"] == 0 and seen["candidate"] == "2"
    assert existing_versions(work / "repository" / "softmax") == [1, 2]
    report = json.loads((work / "repository/softmax/2/finetune_report.json").read_text())
    assert report["feedback"] == postgres_url
    assert report["sets"]["held-out feedback"]["images"] == COUNT // 5
    # The candidate ran beside v1 on the fresh set, which v1 answered.
    assert seen["shadow"]["roles_while_shadowed"] == {
        "served_version": "1",
        "shadow_version": "2",
    }
    assert seen["fresh"]["versions"] == {"1": COUNT}
    assert seen["shadow"]["agree"] + seen["shadow"]["disagree"] > 0
    # Served vs candidate on rated answers, as the Postgres store itself counts them.
    store = open_store(postgres_url)
    try:
        [shadowed] = [s for s in store.stats().shadow if (s.version, s.candidate) == ("1", "2")]
    finally:
        store.close()
    assert shadowed.rated == seen["shadow"]["rated"] > 0
    assert shadowed.candidate_right == seen["shadow"]["candidate_right"]
    # Promoted: the first photos answered by v2; then rolled back to v1.
    assert seen["served_after_promote"] == "2"
    assert seen["again"]["versions"] == {"2": COUNT}
    assert seen["served_after_rollback"] == "1"
    policy = read_policy(work / "repository" / "softmax")
    assert (policy.served, policy.previous) == ("1", "2")
    # The repository given was only copied.
    assert existing_versions(published_softmax / "softmax") == [1]
    assert not (published_softmax / "softmax" / "serving.json").exists()


def test_a_refusal_by_the_gate_stops_the_loop_with_exit_1(
    published_softmax: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "loop"
    # A learning rate far too high for RMSprop throws the weights away: MNIST test fails.
    status = main(
        ["--work", str(work), "--repository", str(published_softmax), "--model", "softmax",
         "--condition", CONDITION, "--count", "50", "--",
         "--epochs", "2", "--learning-rate", "0.2", "--min-feedback", "1",
         "--test-subset", "1000", "--handwriting-stride", "20", "--quiet"]
    )  # fmt: skip
    assert status == 1
    captured = capsys.readouterr()
    assert re.search(r"^loop +FAIL MNIST test", captured.out, re.M), captured.out
    assert "the promotion gate refused the candidate" in captured.err
    seen = json.loads((work / RESULT_FILE).read_text())
    assert seen["fine_tune_status"] == 1 and seen["candidate"] == ""
    assert seen["served_after_promote"] == ""
    assert existing_versions(work / "repository" / "softmax") == [1]
    [run] = (work / "runs" / "softmax").iterdir()
    assert seen["fine_tune_report"] == str(run)
    assert (run / "finetune_report.png").is_file()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--condition", "fog"], "invalid choice: 'fog'"),
        (["--count", "0"], "--count must be at least 1"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--work", str(tmp_path / "loop"), *args])
    assert exited.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "loop").exists()
