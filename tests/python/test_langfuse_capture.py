"""The Swift bindings must write exactly the span attributes langfuse 5.0.4
writes. This runs tests/python/langfuse_capture.py with the real SDK against
tracefold and checks that the committed fixture the Swift tests read
(Tests/TracefoldTracingTests/Fixtures/langfuse-v5-attributes.json) is what the SDK
sends today. TRACEFOLD_UPDATE_FIXTURES=1 rewrites it."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "Tests", "TracefoldTracingTests", "Fixtures", "langfuse-v5-attributes.json")
# Written by the SDK on every span whatever the call; not part of a call's encoding.
AMBIENT = {"langfuse.environment", "langfuse.release", "langfuse.internal.is_app_root", "langfuse.internal.as_root"}


def capture(tf):
    env = {**os.environ, "LANGFUSE_BASE_URL": tf.base_url, "LANGFUSE_PUBLIC_KEY": "pk-lf-test", "LANGFUSE_SECRET_KEY": "sk-lf-test"}
    subprocess.run([sys.executable, os.path.join(HERE, "langfuse_capture.py")], env=env, check=True, timeout=120)
    lines = tf.wait_for_spans(11, timeout=30)
    cases = {}
    for line in lines:
        attributes = {a["key"]: a["value"] for a in line["attributes"] if a["key"] not in AMBIENT}
        cases[line["name"]] = {
            "attributes": dict(sorted(attributes.items())),
            "status": line["status"],
            "zeroDuration": line["startTimeUnixNano"] == line["endTimeUnixNano"],
        }
    return dict(sorted(cases.items()))


def test_the_committed_fixture_is_what_langfuse_sends(tracefold):
    captured = capture(tracefold)
    assert set(captured) >= {"propagate", "child", "observation-metadata", "io", "string-io", "generation", "error", "evt", "public", "numbers"}
    if os.environ.get("TRACEFOLD_UPDATE_FIXTURES") == "1":
        os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
        with open(FIXTURE, "w") as f:
            json.dump(captured, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
    with open(FIXTURE) as f:
        assert json.load(f) == captured
