from pathlib import Path

import pytest

from serving.settings import (
    Settings,
    build_parser,
    default_repository,
    load_settings,
    settings_environ,
)


def test_defaults_follow_triton_ports():
    s = load_settings([], environ={})
    assert (s.grpc_port, s.metrics_port) == (8001, 8002)
    assert s.model_repository.name == "model_repository"


def test_cli_beats_env_beats_default():
    env = {"DIGITS_GRPC_PORT": "9001", "DIGITS_MAX_BATCH_SIZE": "32"}
    s = load_settings(["--grpc-port", "9100"], environ=env)
    assert s.grpc_port == 9100
    assert s.max_batch_size == 32


def test_paths_and_choices_parse():
    s = load_settings(["--model-repository", "/x/y", "--provider", "cpu"], environ={})
    assert s.model_repository == Path("/x/y")
    assert s.provider == "cpu"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_batch_size": 0}, "--max-batch-size=0 is outside"),
        ({"grpc_port": 70000}, "--grpc-port=70000"),
        ({"provider": "tpu"}, "expected one of"),
        ({"tls_cert": Path("a.pem")}, "go together"),
    ],
)
def test_bad_values_are_refused_with_the_flag_name(changes, message):
    with pytest.raises(ValueError, match=message):
        Settings(**changes)


def test_bad_env_value_names_the_variable():
    with pytest.raises(ValueError, match="DIGITS_GRPC_PORT='abc'"):
        load_settings([], environ={"DIGITS_GRPC_PORT": "abc"})


def test_model_control_is_off_without_auth(tmp_path):
    assert not Settings().model_control_enabled
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    s = Settings(auth_token_file=token)
    assert s.model_control_enabled
    assert s.resolved_auth_token() == "s3cret"
    assert Settings(model_control="on").model_control_enabled


def test_every_flag_is_documented():
    text = build_parser().format_help()
    for flag in ("--model-repository", "--grpc-port", "--metrics-port", "--max-queue-delay-us"):
        assert flag in text


def test_triton_names_are_aliases():
    s = load_settings(["--repository-poll-secs", "30", "--exit-timeout-secs", "4"], environ={})
    assert (s.repository_poll_seconds, s.grace_seconds) == (30, 4)
    text = build_parser().format_help()
    assert "alias of --repository-poll-seconds" in text and "alias of --grace-seconds" in text


@pytest.mark.parametrize(
    ("mode", "control", "poll"), [("none", "off", 0), ("explicit", "on", 0), ("poll", "off", 5)]
)
def test_model_control_mode_maps_like_triton(mode, control, poll):
    s = load_settings(["--model-control-mode", mode], environ={})
    assert (s.model_control, s.repository_poll_seconds) == (control, poll)


def test_model_control_mode_beats_env_but_refuses_a_contradicting_flag():
    env = {"DIGITS_MODEL_CONTROL": "off", "DIGITS_REPOSITORY_POLL_SECONDS": "9"}
    s = load_settings(["--model-control-mode", "explicit"], environ=env)
    assert (s.model_control, s.repository_poll_seconds) == ("on", 0)
    with pytest.raises(ValueError, match="--model-control-mode=explicit means --model-control=on"):
        load_settings(["--model-control-mode", "explicit", "--model-control", "off"], environ={})
    with pytest.raises(ValueError, match="means --repository-poll-seconds=0"):
        load_settings(["--model-control-mode", "none", "--repository-poll-secs", "3"], environ={})
    with pytest.raises(ValueError, match="poll needs --repository-poll-seconds > 0"):
        load_settings(["--model-control-mode", "poll", "--repository-poll-seconds", "0"], {})
    assert load_settings(["--model-control-mode", "poll", "--repository-poll-secs", "2"], {})


def test_log_format_choices():
    assert load_settings(["--log-format", "json"], environ={}).log_format == "json"
    assert Settings().log_format == "text"
    with pytest.raises(ValueError, match="expected one of"):
        Settings(log_format="xml")


def _package(root: Path, checkout: bool, packaged: bool) -> Path:
    package = root / "serving"
    package.mkdir(parents=True)
    if checkout:
        (root / "pyproject.toml").write_text("")
        (root / "model_repository").mkdir()
    if packaged:
        (package / "_models").mkdir()
    return package


def test_default_repository_checkout_first_then_packaged_copy(tmp_path):
    both = _package(tmp_path / "a", checkout=True, packaged=True)
    assert default_repository(both) == tmp_path / "a" / "model_repository"
    # An installed package: site-packages/serving/_models, no pyproject.toml beside it.
    installed = _package(tmp_path / "b", checkout=False, packaged=True)
    (tmp_path / "b" / "model_repository").mkdir()  # a stray directory is not a checkout
    assert default_repository(installed) == installed / "_models"


def test_no_shipped_repository_is_a_clear_error_naming_the_flag(tmp_path):
    nothing = _package(tmp_path, checkout=False, packaged=False)
    with pytest.raises(ValueError, match="pass --model-repository DIR"):
        default_repository(nothing)


@pytest.mark.parametrize("value", ["0", "-1", "two", "257", ""])
def test_workers_must_be_a_count_or_auto(value):
    with pytest.raises(ValueError, match="--workers"):
        Settings(workers=value)


def test_workers_auto_is_the_cpu_budget(monkeypatch):
    monkeypatch.setattr("serving.settings.cpu_budget", lambda: 7)
    assert load_settings(["--workers", "auto"], environ={}).worker_count == 7
    assert load_settings([], environ={"DIGITS_WORKERS": "3"}).worker_count == 3
    assert Settings().worker_count == 1


def test_settings_survive_the_environment_handed_to_workers(tmp_path):
    s = Settings(
        model_repository=tmp_path,
        grpc_port=0,
        max_queue_delay_us=250,
        grace_seconds=2.5,
        auth_token="t0ken",
        tls_client_ca=None,
        workers="2",
    )
    assert load_settings([], environ=settings_environ(s)) == s
