"""The shape every agent codec has (sans-IO, in the manner of h11).

The pipe feeds bytes from the agent's stdout to `receive()` and writes whatever
`data_to_send()` returns to its stdin after every call. Commands go in through `send()`.
No codec ever touches a process, a socket or a clock.
"""

from __future__ import annotations

from typing import Protocol

from bridge.events import AgentCommand, AgentEvent


class AgentCodec(Protocol):
    def start(self, prompt: str | None) -> None:
        """Queue the opening messages, and the first prompt when there is one."""

    def send(self, command: AgentCommand) -> None:
        """Queue `command`; raises `ApprovalError` if it answers a request no longer pending."""

    def receive(self, data: bytes) -> list[AgentEvent]:
        """Events in `data`; raises `ProtocolError` on a corrupt line."""

    def receive_eof(self) -> list[AgentEvent]:
        """End of the agent's output; raises `ProtocolError` if a line was cut off."""

    def data_to_send(self) -> bytes:
        """Bytes queued for the agent's stdin (empty when nothing is queued)."""

    def pending_requests(self) -> list[str]:
        """Ids of the agent's requests that still wait for an answer."""

    def abandon(self) -> None:
        """Queue a refusal for every request still pending (the daemon is closing the agent:
        a request left unanswered would stall it, and a refusal never approves anything)."""
