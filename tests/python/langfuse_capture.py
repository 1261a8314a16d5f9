"""Logical calls of the langfuse 5.0.4 SDK, one trace each, sent to
LANGFUSE_BASE_URL. tests/python/test_langfuse_capture.py turns the spans
tracefold received into Tests/TracefoldTracingTests/Fixtures/langfuse-v5-attributes.json,
which the Swift bindings' encoding tests compare against."""
from datetime import datetime, timezone

from langfuse import get_client, observe, propagate_attributes

langfuse = get_client()


@observe(name="child")
def propagated_child():
    return None


@observe(name="propagate")
def propagate():
    with propagate_attributes(user_id="u1", session_id="s1", tags=["t1", "t2"], trace_name="my-trace", version="v9",
                              metadata={"tenant": "acme", "count": 5, "obj": {"k": "v"}, "uni": "café ☕", "ratio": 0.25,
                                        "flag": True, "list": [1, "a"]}):
        propagated_child()


@observe(name="observation-metadata")
def observation_metadata():
    langfuse.update_current_span(metadata={"a": 1, "n": {"x": 1}, "s": "x", "quote": "he said \"hi\"\n\t/"})
    langfuse.update_current_span(metadata={"b": 2, "n": {"y": 2}})


@observe(name="io")
def io(x, y, key=None):
    return {"answer": "42", "uni": "é", "nested": [1.5, None, True]}


@observe(name="string-io")
def string_io(text):
    return "plain output"


@observe(name="generation", as_type="generation")
def generation():
    langfuse.update_current_generation(
        model="gpt-4o", model_parameters={"temperature": 0.1, "max_tokens": 10},
        usage_details={"input": 10, "output": 5}, cost_details={"input": 0.001, "output": 0.002},
        completion_start_time=datetime(2025, 1, 1, 0, 0, 1, tzinfo=timezone.utc),
    )


@observe(name="error", as_type="tool")
def error():
    raise ValueError("boom")


@observe(name="event-parent")
def event_parent():
    langfuse.create_event(name="evt", input={"e": 1})


@observe(name="public")
def public():
    langfuse.set_current_trace_as_public()


@observe(name="numbers")
def numbers():
    langfuse.update_current_span(metadata={"big": 2**60, "safe": 2**53 - 1, "neg": -7, "nan": float("nan"), "inf": float("inf"),
                                           "small": 1e-7, "whole": 3.0, "large": 1e21})


propagate()
observation_metadata()
io(1, "x", key=[1, 2])
string_io("plain input")
generation()
try:
    error()
except ValueError:
    pass
event_parent()
public()
numbers()
langfuse.flush()
