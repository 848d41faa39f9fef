"""One nginx template: the checked-in compose config is its rendering of the defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.nginx_conf import (
    CHECKED_IN,
    COMPOSE,
    TEMPLATE,
    NginxConfig,
    Side,
    local,
    render,
    server_body_limit,
)
from serving.settings import Settings


def test_checked_in_nginx_conf_is_the_rendered_default():
    # Regenerate with: python -m deploy.nginx_conf > deploy/nginx/nginx.conf
    assert CHECKED_IN.read_text() == render(COMPOSE)


def test_local_rendering_keeps_everything_inside_its_workdir(tmp_path: Path):
    grpc = Side(4321, ("127.0.0.1:1", "127.0.0.1:2"))
    text = render(local(tmp_path, grpc, Side(4322, ("127.0.0.1:3", "127.0.0.1:4"))))
    assert "listen 127.0.0.1:4321 http2;" in text and "listen 127.0.0.1:4322;" in text
    assert "        server 127.0.0.1:1 max_fails=1 fail_timeout=10s;\n" in text
    assert "        server 127.0.0.1:4 max_fails=1 fail_timeout=10s;\n" in text
    assert f"pid {tmp_path}/nginx.pid;" in text and "daemon off;" in text
    assert f"    proxy_temp_path {tmp_path / 'proxy'};\n" in text
    assert f"access_log {tmp_path / 'nginx-access.log'} grpc;" in text
    assert f"access_log {tmp_path / 'nginx-http-access.log'} rest;" in text
    # Every directive that writes a file writes it under the workdir.
    writers = re.findall(
        r"^\s*(?:pid|error_log|access_log|\w+_temp_path) (\S+?);?(?: |$)", text, re.M
    )
    assert len(writers) == 9
    assert all(path.startswith(str(tmp_path)) for path in writers), writers
    assert "{{" not in text


def test_compose_rendering_names_the_compose_services():
    text = render(COMPOSE)
    assert "listen 8000 http2;" in text and "access_log /dev/stdout grpc;" in text
    assert "listen 8080;" in text and "access_log /dev/stdout rest;" in text
    for host in ("server", "server-2", "server-3"):
        assert f"server {host}:8001 max_fails=1 fail_timeout=10s;" in text
        assert f"server {host}:8000 max_fails=1 fail_timeout=10s;" in text
    assert "daemon off;" not in text and "_temp_path" not in text


def test_http_side_pools_connections_and_limits_bodies_like_the_server():
    text = render(COMPOSE)
    http_block = text.split("upstream digits_http {", 1)[1].split("}", 1)[0]
    assert "keepalive 64;" in http_block and "keepalive_timeout 20s;" in http_block
    server = text.split("listen 8080;", 1)[1]
    for directive in (
        "proxy_pass http://digits_http;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_read_timeout 300s;",
        "proxy_connect_timeout 2s;",
        "proxy_next_upstream error timeout non_idempotent;",
    ):
        assert directive in server, directive
    # Both sides refuse exactly what the server would: its --max-message-bytes default.
    assert server_body_limit() == f"{Settings().max_message_bytes // 2**20}m" == "64m"
    assert text.count(f"client_max_body_size {server_body_limit()};") == 2


def test_list_placeholders_indent_and_empty_lists_drop_the_line():
    config = NginxConfig(
        header="h",
        grpc_listen="1",
        grpc_upstreams=("a:1", "b:2"),
        access_log="x",
        http_listen="2",
        http_upstreams=(),
        http_access_log="y",
    )
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
