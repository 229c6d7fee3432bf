"""The JSON-lines base both codec families build on (bridge/codecs/endpoint.py)."""

import random

import pytest

from bridge.codecs.endpoint import JsonLinesEndpoint
from bridge.errors import ProtocolError
from bridge.events import Notice, UnknownEvent


class Echo(JsonLinesEndpoint):
    """The smallest endpoint: every object is an `UnknownEvent`, `ask` marks a request."""

    def _asks_us(self, message):
        return "ask" in message

    def _message(self, message, line):
        if message.get("owe"):
            self._later.append(Notice(text="owed"))
        return [UnknownEvent(type="echo", raw=message)]


def test_objects_come_out_whole_whatever_the_chunks():
    wire = b'{"n": 1}\n\nstray output\n{"n": 2, "text": "\xc3\xa9t\xc3\xa9"}\n'
    rng = random.Random(5)
    for _ in range(50):
        endpoint, events, at = Echo(1 << 16), [], 0
        while at < len(wire):
            step = rng.randint(1, 7)
            events += endpoint.receive(wire[at : at + step])
            at += step
        assert events == [UnknownEvent(type="echo", raw={"n": 1}), Notice(text="stray output"),
                          UnknownEvent(type="echo", raw={"n": 2, "text": "été"})]
        assert endpoint.receive_eof() == []


def test_a_corrupt_object_and_a_cut_last_line_are_protocol_errors():
    with pytest.raises(ProtocolError):
        Echo(1 << 16).receive(b'{"n": \n')
    endpoint = Echo(1 << 16)
    assert endpoint.receive(b'{"n": 1}\n{"n"') == [UnknownEvent(type="echo", raw={"n": 1})]
    with pytest.raises(ProtocolError, match="middle of a line"):
        endpoint.receive_eof()


def test_owed_events_come_out_first_with_the_next_receive_and_writes_queue_as_lines():
    endpoint = Echo(1 << 16)
    assert endpoint.receive(b'{"owe": true}\n') == [
        UnknownEvent(type="echo", raw={"owe": True})]
    assert endpoint.receive(b"") == [Notice(text="owed")]
    endpoint._write({"a": "é"})
    endpoint._write({"b": 2})
    assert endpoint.data_to_send() == '{"a": "é"}\n{"b": 2}\n'.encode()
    assert endpoint.data_to_send() == b""
