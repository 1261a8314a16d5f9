"""The a.7 scenario of reference/langfuse.md, run with the real langfuse SDK
against LANGFUSE_BASE_URL. Prints the trace id."""
from langfuse import get_client, observe, propagate_attributes

langfuse = get_client()
trace_ids = []


@observe(name="tool-x", as_type="tool")
def tool_x():
    raise ValueError("boom")


@observe(name="gen", as_type="generation")
def gen(question):
    langfuse.update_current_generation(
        model="gpt-4o",
        model_parameters={"temperature": 0.1, "max_tokens": 10},
        usage_details={"input": 10, "output": 5},
        cost_details={"input": 0.001, "output": 0.002},
    )
    return {"answer": "42"}


@observe()
def child(x, y=2):
    langfuse.update_current_span(metadata={"a": 1, "n": {"x": 1}})
    langfuse.update_current_span(metadata={"b": 2, "n": {"y": 2}, "step": "child"})
    return x + y


@observe(name="root-fn")
def root():
    trace_ids.append(langfuse.get_current_trace_id())
    with propagate_attributes(
        user_id="u1", session_id="s1", tags=["t1", "t2"], trace_name="my-trace", version="v9",
        metadata={"tenant": "acme", "count": 5, "obj": {"k": "v"}},
    ):
        child(1)
        gen("q")
        langfuse.create_event(name="evt", input={"e": 1})
        try:
            tool_x()
        except ValueError:
            pass
        langfuse.set_current_trace_as_public()
    return "done"


root()
langfuse.flush()
print(trace_ids[0])
