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
    env = {**os.environ, "TRACEFOLD_ENDPOINT": f"127.0.0.1:{port}"}
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
