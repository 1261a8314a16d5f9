"""SPEC §9.1, §9.5: `tracefold validate` and `serve` from the command line."""
import os
import subprocess
import urllib.request

from conftest import BIN, ROOT, Tracefold, free_port


def validate(path, env=None):
    return subprocess.run([BIN, "validate", "--config", str(path)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_repository_config_is_valid():
    r = validate(os.path.join(ROOT, "collector.yaml"))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_unknown_key_fails_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers:\n  otlp:\n    protocols:\n      http:\n        endpont: 127.0.0.1:4318\n"
                   "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n")
    r = validate(bad)
    assert r.returncode != 0
    assert f"{bad}:5:9: unknown key \"endpont\" in receivers.otlp.protocols.http" in r.stderr


def test_bad_value_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("store:\n  durability: maybe\nreceivers:\n  otlp: {}\n")
    r = validate(bad)
    assert r.returncode != 0
    assert ":2:15: store.durability must be one of fsync, none, got \"maybe\"" in r.stderr
    r = validate(tmp_path / "absent.yaml")
    assert r.returncode != 0
    assert "cannot read the config file" in r.stderr


def test_env_defaults_and_overrides_in_validate(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: ${env:EP:-127.0.0.1:1}\n"
                   "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n")
    assert "receiver 127.0.0.1:1," in validate(cfg).stdout
    assert "receiver 127.0.0.1:7," in validate(cfg, {"EP": "127.0.0.1:7"}).stdout


def test_serve_runs_on_embedded_defaults_without_a_config_file(tmp_path):
    """`tracefold serve` in a directory with no collector.yaml uses the
    embedded defaults; data goes under ./data of the working directory."""
    port = free_port()
    # A free gRPC port too: the default 4317 may be taken on the machine.
    env = {**os.environ, "TRACEFOLD_ENDPOINT": f"127.0.0.1:{port}", "TRACEFOLD_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}"}
    env.pop("TRACEFOLD_DATA_DIR", None)
    proc = subprocess.Popen([BIN, "serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        tf = Tracefold(tmp_path / "data", port=port)
        for _ in range(200):
            try:
                urllib.request.urlopen(tf.base_url + "/health/live", timeout=1)
                break
            except OSError:
                import time
                time.sleep(0.05)
        assert (tmp_path / "data" / "intake").is_dir()
        assert (tmp_path / "data" / "export").is_dir()
        assert (tmp_path / "data" / "tracefold.sqlite").is_file()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    text = out.decode()
    assert "source=embedded defaults" in text
    assert f"endpoint=http://127.0.0.1:{port}" in text
    assert "durability=fsync" in text
    assert "store=sqlite ./data/tracefold.sqlite" in text
    assert "export=./data/export" in text
    # The process-wide settings made when it loaded (allocator.c): jemalloc's,
    # and SQLite's allocation accounting off (sqlite3_config before any
    # connection, or the log says what it returned instead).
    assert "malloc=jemalloc narenas:2," in text
    assert "sqlite=memstatus:off" in text


# SPEC §5.5: required-metadata schemas, checked by `tracefold validate`.
GOVERNED_BASE = """receivers:
  otlp:
    protocols:
      http:
        auth:
          api_keys:
            - public_key: pk-a
              secret_key: sk-a
              workspace: research
              metadata: {KEY_METADATA}
metadata:
  headers_to_metadata: X-Team, Authorization
  schemas:
    api_key: {API_KEY_SCHEMA}
  workspaces:
    research:
      metadata: {team: research}
service:
  pipelines:
    traces:
      receivers: [otlp]
"""

SCHEMA = ('{type: object, additionalProperties: true, required: [cost_center, env], '
          'properties: {cost_center: {type: string}, env: {type: string, enum: [prod, staging], default: prod}}}')


def governed(tmp_path, key_metadata="{cost_center: cc-1}", schema=SCHEMA):
    path = tmp_path / "governed.yaml"
    path.write_text(GOVERNED_BASE.replace("{KEY_METADATA}", key_metadata).replace("{API_KEY_SCHEMA}", schema))
    return validate(path)


def test_governed_config_is_valid_with_defaults_filled_in(tmp_path):
    r = governed(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "api key pk-a (workspace research): cost_center=cc-1, env=prod, team=research" in r.stdout
    assert "headers to metadata: x-team" in r.stdout
    assert 'warning: HEADERS_TO_METADATA names "authorization"' in r.stderr


def test_missing_required_field_names_the_key_and_the_field(tmp_path):
    r = governed(tmp_path, key_metadata="{owner: me}")
    assert r.returncode == 1
    assert ('api key "pk-a" (workspace research): metadata is missing required field "cost_center" '
            '(metadata.schemas.api_key)') in r.stderr


def test_enum_is_enforced(tmp_path):
    r = governed(tmp_path, key_metadata="{cost_center: cc-1, env: dev}")
    assert r.returncode == 1
    assert 'field "env" is "dev", not one of "prod", "staging"' in r.stderr


def test_workspace_schema_names_the_workspace(tmp_path):
    path = tmp_path / "ws.yaml"
    path.write_text(GOVERNED_BASE.replace("{KEY_METADATA}", "{}").replace("    api_key: {API_KEY_SCHEMA}",
        "    workspace: {type: object, additionalProperties: true, required: [owner], properties: {owner: {type: string}}}"))
    r = validate(path)
    assert r.returncode == 1
    assert 'workspace "research": metadata is missing required field "owner" (metadata.schemas.workspace)' in r.stderr


def test_schemas_outside_the_subset_are_clear_errors(tmp_path):
    cases = [
        ("{additionalProperties: true}", "metadata.schemas.api_key needs type: object"),
        ("{type: array, additionalProperties: true}", 'metadata.schemas.api_key.type must be "object"'),
        ("{type: object}", "metadata.schemas.api_key needs additionalProperties: true"),
        ("{type: object, additionalProperties: false}", "metadata.schemas.api_key.additionalProperties must be true"),
        ("{type: object, additionalProperties: true, properties: {n: {type: integer}}}",
         'metadata.schemas.api_key.properties.n.type must be "string"'),
        ("{type: object, additionalProperties: true, properties: {n: {enum: [a]}}}",
         "metadata.schemas.api_key.properties.n needs type: string"),
        ("{type: object, additionalProperties: true, properties: {n: {type: string, minLength: 2}}}",
         'unsupported schema keyword "minLength"'),
        ("{type: object, additionalProperties: true, oneOf: []}", 'unsupported schema keyword "oneOf"'),
        ("{type: object, additionalProperties: true, properties: {n: {type: string, enum: [a], default: b}}}",
         'metadata.schemas.api_key.properties.n.default "b" is not one of its enum values'),
        ("{type: object, additionalProperties: true, required: [ghost]}",
         'metadata.schemas.api_key.required names "ghost", which is not under metadata.schemas.api_key.properties'),
    ]
    for schema, message in cases:
        r = governed(tmp_path, schema=schema)
        assert r.returncode == 1, schema
        assert message in r.stderr, (schema, r.stderr)


def test_keys_name_declared_workspaces_and_values_are_short_strings(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text(GOVERNED_BASE.replace("workspace: research", "workspace: nowhere").replace("{KEY_METADATA}", "{}")
                    .replace("    api_key: {API_KEY_SCHEMA}\n", ""))
    r = validate(path)
    assert r.returncode == 1
    assert 'api key "pk-a" names workspace "nowhere", which is not declared under metadata.workspaces (declared: "research")' in r.stderr
    long_value = "x" * 129
    r = governed(tmp_path, key_metadata="{cost_center: %s}" % long_value)
    assert r.returncode == 1
    assert "metadata.cost_center is 129 characters long; metadata values are at most 128" in r.stderr
    r = governed(tmp_path, key_metadata="{cost_center: %s}" % long_value[:128])
    assert r.returncode == 0, r.stderr


def test_a_port_in_use_names_the_receiver_and_exits_1(tmp_path):
    """Like the Collector, tracefold does not start with a receiver it
    cannot bind; the message names the receiver and its address, for the
    gRPC port and for the HTTP one."""
    import socket
    from conftest import TEST_CONFIG
    config = tmp_path / "collector.yaml"
    config.write_text(TEST_CONFIG)
    for taken in ("grpc", "http"):
        http_port, grpc_port = free_port(), free_port()
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", grpc_port if taken == "grpc" else http_port))
            holder.listen()
            env = {**os.environ, "TRACEFOLD_ENDPOINT": f"127.0.0.1:{http_port}", "TRACEFOLD_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
                   "TRACEFOLD_DATA_DIR": str(tmp_path / f"data-{taken}")}
            r = subprocess.run([BIN, "serve", "--config", str(config)], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1, r.stderr
        what = f"OTLP/gRPC on 127.0.0.1:{grpc_port}" if taken == "grpc" else f"OTLP/HTTP and the query API on 127.0.0.1:{http_port}"
        assert f"tracefold: cannot serve {what}: " in r.stderr and "Address already in use" in r.stderr, r.stderr
