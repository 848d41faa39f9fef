"""One nginx template: the checked-in compose config is its rendering of the defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.nginx_conf import CHECKED_IN, COMPOSE, TEMPLATE, NginxConfig, local, render


def test_checked_in_nginx_conf_is_the_rendered_default():
    # Regenerate with: python -m deploy.nginx_conf > deploy/nginx/nginx.conf
    assert CHECKED_IN.read_text() == render(COMPOSE)


def test_local_rendering_keeps_everything_inside_its_workdir(tmp_path: Path):
    text = render(local(tmp_path, 4321, ["127.0.0.1:1", "127.0.0.1:2"]))
    assert "listen 127.0.0.1:4321 http2;" in text
    assert "        server 127.0.0.1:1 max_fails=1 fail_timeout=10s;\n" in text
    assert f"pid {tmp_path}/nginx.pid;" in text and "daemon off;" in text
    assert f"    proxy_temp_path {tmp_path / 'proxy'};\n" in text
    assert f"access_log {tmp_path / 'nginx-access.log'} grpc;" in text
    # Every directive that writes a file writes it under the workdir.
    writers = re.findall(
        r"^\s*(?:pid|error_log|access_log|\w+_temp_path) (\S+?);?(?: |$)", text, re.M
    )
    assert len(writers) == 8
    assert all(path.startswith(str(tmp_path)) for path in writers), writers
    assert "{{" not in text


def test_compose_rendering_names_the_compose_services():
    text = render(COMPOSE)
    assert "listen 8000 http2;" in text and "access_log /dev/stdout grpc;" in text
    for host in ("server", "server-2", "server-3"):
        assert f"server {host}:8001 max_fails=1 fail_timeout=10s;" in text
    assert "daemon off;" not in text and "_temp_path" not in text


def test_list_placeholders_indent_and_empty_lists_drop_the_line():
    config = NginxConfig(header="h", grpc_listen="1", grpc_upstreams=("a:1", "b:2"), access_log="x")
    template = "top\n    {{ grpc_upstream_servers }}\n  {{ temp_paths }}\nend {{ keepalive }}\n"
    assert render(config, template) == (
        "top\n"
        "    server a:1 max_fails=1 fail_timeout=10s;\n"
        "    server b:2 max_fails=1 fail_timeout=10s;\n"
        "end 64\n"
    )


def test_unknown_placeholder_is_an_error():
    with pytest.raises(KeyError, match="nope"):
        render(COMPOSE, "x {{ nope }}\n")
    assert "{{ grpc_listen }}" in TEMPLATE.read_text()
