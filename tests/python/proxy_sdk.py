"""Black-box checks of the Poindexter proxy with the official OpenAI and Anthropic SDKs.

Run by tests/proxy_sdk.rs: python proxy_sdk.py <proxy base url> <api key>. The upstream is
the sandbox with its defaults (16 output tokens per answer). Prints one line per check and,
last, `METERED <n>`: how many requests should have produced a usage event.
"""

import json
import sys

import anthropic
import openai

BASE, KEY = sys.argv[1], sys.argv[2]
TOKENS = 16  # sandbox default answer length
metered = 0


def check(name):
    def wrap(fn):
        fn()
        print(f"ok {name}", flush=True)
        return fn

    return wrap


oa = openai.OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0)
an = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@check("openai chat, not streamed")
def _():
    global metered
    r = oa.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    metered += 1
    assert r.choices[0].message.content.startswith("Hello"), r
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == TOKENS and r.usage.prompt_tokens > 0, r.usage


@check("openai chat, streamed, no usage asked: none shown")
def _():
    global metered
    chunks = list(
        oa.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
        )
    )
    metered += 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello"), text
    assert all(c.choices for c in chunks), "a usage-only chunk leaked to a client that did not ask"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@check("openai chat, streamed, include_usage")
def _():
    global metered
    chunks = list(
        oa.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    metered += 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == TOKENS


@check("claude through the OpenAI SDK: system, multi-turn, not streamed")
def _():
    global metered
    r = oa.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Say hello again"},
        ],
        max_tokens=100,
    )
    metered += 1
    assert r.object == "chat.completion"
    assert r.choices[0].message.content.startswith("Hello"), r
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == TOKENS
    assert r.usage.total_tokens == r.usage.prompt_tokens + TOKENS


@check("claude through the OpenAI SDK: streamed with usage")
def _():
    global metered
    chunks = list(
        oa.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    metered += 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello"), text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"], finish
    assert chunks[-1].usage.completion_tokens == TOKENS


@check("claude through the OpenAI SDK: max_tokens gives finish_reason length")
def _():
    global metered
    r = oa.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "Say hello"}],
        max_tokens=3,
    )
    metered += 1
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


@check("claude through the OpenAI SDK: tool call and tool result, not streamed")
def _():
    global metered
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    r = oa.chat.completions.create(
        model="claude-sonnet-4-5", messages=msgs, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    metered += 1
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sandbox"}
    msgs.append(r.choices[0].message.model_dump(exclude_none=True))
    msgs.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    r2 = oa.chat.completions.create(model="claude-sonnet-4-5", messages=msgs, tools=[WEATHER_TOOL])
    metered += 1
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content


@check("claude through the OpenAI SDK: tool call, streamed")
def _():
    global metered
    stream = oa.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    name, args, finish = None, "", None
    for c in stream:
        if not c.choices:
            continue
        for t in c.choices[0].delta.tool_calls or []:
            name = t.function.name or name
            args += t.function.arguments or ""
        finish = c.choices[0].finish_reason or finish
    metered += 1
    assert name == "get_weather" and json.loads(args) == {"city": "sandbox"}, (name, args)
    assert finish == "tool_calls"


@check("openai embeddings")
def _():
    global metered
    r = oa.embeddings.create(model="text-embedding-3-small", input=["one text", "another text"])
    metered += 1
    assert len(r.data) == 2 and len(r.data[0].embedding) == 1536
    assert r.usage.prompt_tokens == 4


@check("openai model list")
def _():
    ids = [m.id for m in oa.models.list()]
    assert "gpt-4o" in ids and "claude-sonnet-4-5" in ids, ids


@check("anthropic messages, not streamed")
def _():
    global metered
    r = an.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    metered += 1
    assert r.content[0].text.startswith("Hello") and r.stop_reason == "end_turn"
    assert r.usage.output_tokens == TOKENS and r.usage.input_tokens > 0


@check("anthropic messages, streamed")
def _():
    global metered
    with an.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "Say hello"}],
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    metered += 1
    assert text.startswith("Hello")
    assert final.usage.output_tokens == TOKENS and final.stop_reason == "end_turn"


@check("anthropic messages, tool use")
def _():
    global metered
    r = an.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        tools=[{"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    metered += 1
    assert r.stop_reason == "tool_use" and r.content[0].input == {"city": "sandbox"}


@check("anthropic model list")
def _():
    ids = [m.id for m in an.models.list()]
    assert "claude-sonnet-4-5" in ids and "gpt-4o" not in ids, ids


@check("errors: a bad key is 401 for both SDKs, a gpt model on /v1/messages is 404")
def _():
    bad = "pk_live_" + "B" * 43
    try:
        openai.OpenAI(base_url=f"{BASE}/v1", api_key=bad, max_retries=0).models.list()
        raise AssertionError("accepted a bad key")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "invalid_api_key"
    try:
        anthropic.Anthropic(base_url=BASE, api_key=bad, max_retries=0).messages.create(
            model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        raise AssertionError("accepted a bad key")
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401
    try:
        an.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        raise AssertionError("served a gpt model as anthropic")
    except anthropic.NotFoundError as e:
        assert e.status_code == 404


@check("errors: an API the proxy does not serve is a 404 whose message names what it serves")
def _():
    try:
        oa.responses.create(model="gpt-4o-mini", input="hi")
        raise AssertionError("served the Responses API")
    except openai.NotFoundError as e:
        assert e.code == "unknown_url", e.body
        assert "POST /v1/responses" in str(e) and "/v1/chat/completions" in str(e), str(e)
    try:
        an.messages.count_tokens(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
        )
        raise AssertionError("served count_tokens")
    except anthropic.NotFoundError as e:
        assert "/v1/messages" in str(e), str(e)


print(f"METERED {metered}")
