"""Fuzzing the rater protocol with generated messages: the parser turns any text into a typed
message or a ProtocolError, nothing else; and thousands of generated messages sent over the
real consumer to a rater on a trial get no server error, log no traceback and change no row."""

import json
import logging

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.rating.messages import (
    AnswerMessage,
    Hello,
    Presented,
    ProtocolError,
    message_parse,
)
from tests.experiments.rating.test_bad_input import rater_on_a_trial, snapshot
from tests.raters import RaterSocket, live_study_make

# Any JSON value, numbers of every size among them (NaN and the infinities too: Python's
# json module writes and reads them).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Strings a trial id could be mistaken for: well-formed tokens, and texts with NUL bytes,
# lone surrogates and other characters a query must never see.
trial_ids = st.text(alphabet="abcXYZ019-_", min_size=0, max_size=70) | st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0xDFFF), max_size=20
)
numbers = st.integers(min_value=-(10**400), max_value=10**400) | st.floats() | json_values
# Messages of the protocol's shape, each field right, wrong or missing.
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "presented", "answer"]) | st.text(max_size=10)},
    optional={
        "trial": trial_ids | json_values,
        "choice": st.sampled_from(["real", "fake"]) | json_values,
        "rt_ms": numbers,
        "shown_ms": numbers,
        "mask_ms": numbers,
        "refresh_ms": numbers,
        "page_hidden": st.booleans() | json_values,
        "screen": st.fixed_dictionaries(
            {}, optional={"width": numbers, "height": numbers, "dpr": numbers}
        )
        | json_values,
    },
)


def _dumped(value) -> str:
    return json.dumps(value)


texts = (
    shaped.map(_dumped)
    | json_values.map(_dumped)
    | st.text(max_size=200)
    # Deep nesting, inside and outside a message.
    | st.integers(min_value=1, max_value=2000).map(lambda n: "[" * n + "]" * n)
    | st.integers(min_value=1, max_value=1500).map(
        lambda n: '{"type": "answer", "trial": ' + "[" * n + "]" * n + "}"
    )
)


@settings(max_examples=3000, deadline=None, database=None)
@given(text=texts)
def test_the_parser_gives_a_typed_message_or_a_protocol_error_for_any_text(text):
    try:
        parsed = message_parse(text)
    except ProtocolError as error:
        assert error.code in {"bad_json", "bad_message", "too_large", "unknown_type"}
        json.dumps(error.as_message())  # the reply can always be sent
    else:
        assert isinstance(parsed, Hello | Presented | AnswerMessage)


PROBE = "zzzzzzzzzzzzzzzzzzzzprobe"  # a well-formed id of no trial: its reply ends a batch


@pytest.mark.django_db(transaction=True)
def test_thousands_of_generated_messages_get_no_server_error_and_change_no_row(caplog):
    study = live_study_make(qualification_trials=4, time_trials_per_block=10)

    async def rater_on_a_trial_closed():
        client, socket, _ = await rater_on_a_trial(study)
        await socket.close()  # each batch opens its own socket, on its own event loop
        return client

    client = async_to_sync(rater_on_a_trial_closed)()
    before = async_to_sync(snapshot)()
    sent = []

    @settings(
        max_examples=300,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(batch=st.lists(texts, min_size=8, max_size=20))
    def batch_sent(batch):
        async def send_batch():
            socket = RaterSocket(study, client)
            assert (await socket.open())[0]
            for text in batch:
                # As a browser's frame arrives, an empty one too (send_to refuses "").
                await socket.communicator.send_input({"type": "websocket.receive", "text": text})
            await socket.send({"type": "presented", "trial": PROBE})
            replies = []
            while True:
                reply = await socket.next()
                replies.append(reply)
                if reply.get("trial") == PROBE:
                    break
            await socket.close()
            return replies

        with caplog.at_level(logging.WARNING):
            replies = async_to_sync(send_batch)()
        assert [r for r in replies if r.get("code") == "server_error"] == []
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
        sent.extend(batch)

    batch_sent()
    assert len(sent) >= 2000, "thousands of messages"
    assert async_to_sync(snapshot)() == before
