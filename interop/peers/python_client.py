#!/usr/bin/env python3
# Copyright The opamp-rs Authors
# SPDX-License-Identifier: Apache-2.0
"""Runs the Python `opentelemetry-opamp-client` (0.5b0) against an OpAMP server.

Usage: python_client.py URL [--heartbeat SECONDS] [--duration SECONDS] [--service NAME]

Prints what happens as JSON lines on stdout (one object per line, key "event"):
  started         the agent's instance UID (hex) and capabilities
  response        every ServerToAgent received (flags, remote config hash, error)
  remote_config   a remote config offer: its hash and files (body as text)
  config_status   what the driver reported for an offer: APPLIED (JSON bodies) or FAILED
  error_response  a ServerErrorResponse passed to on_error
  connect_failed  a failed request
  summary         counts, printed on exit
Exits by itself after --duration seconds (default 60).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from opentelemetry._opamp.agent import OpAMPAgent
from opentelemetry._opamp.callbacks import OpAMPCallbacks
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2

_print_lock = threading.Lock()


def emit(event: str, **fields) -> None:
    line = json.dumps({"event": event, **fields}, sort_keys=True)
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Counters:
    def __init__(self) -> None:
        self.responses = 0
        self.full_state_requests = 0
        self.failures = 0
        self.remote_configs = 0


COUNTERS = Counters()


class RecordingClient(OpAMPClient):
    """Reports every response the library receives (the library hides flags)."""

    def send(self, data: bytes):
        try:
            message = super().send(data)
        except Exception:
            COUNTERS.failures += 1
            raise
        COUNTERS.responses += 1
        full_state = bool(message.flags & opamp_pb2.ServerToAgentFlags_ReportFullState)
        if full_state:
            COUNTERS.full_state_requests += 1
        emit(
            "response",
            flags=int(message.flags),
            report_full_state=full_state,
            remote_config_hash=message.remote_config.config_hash.hex()
            if message.HasField("remote_config")
            else None,
            error=message.error_response.error_message if message.HasField("error_response") else None,
            instance_uid=message.instance_uid.hex(),
        )
        return message


class Callbacks(OpAMPCallbacks):
    def on_connect_failed(self, agent, client, error) -> None:
        emit("connect_failed", error=str(error))

    def on_error(self, agent, client, error_response) -> None:
        emit(
            "error_response",
            type=int(error_response.type),
            message=error_response.error_message,
        )

    def on_message(self, agent, client, message) -> None:
        config = message.remote_config
        if config is None:
            return
        COUNTERS.remote_configs += 1
        files = {
            name: {"content_type": f.content_type, "body": f.body.decode("utf-8", "replace")}
            for name, f in config.config.config_map.items()
        }
        emit("remote_config", hash=config.config_hash.hex(), files=files)
        try:
            parsed = dict(client.decode_remote_config(config))
        except Exception as exc:  # the library parses JSON bodies only
            status = opamp_pb2.RemoteConfigStatuses_FAILED
            error = str(exc)
        else:
            status = opamp_pb2.RemoteConfigStatuses_APPLIED
            error = ""
            client.update_effective_config(parsed, "application/json")
        changed = client.update_remote_config_status(
            remote_config_hash=config.config_hash, status=status, error_message=error
        )
        emit(
            "config_status",
            hash=config.config_hash.hex(),
            status="APPLIED" if status == opamp_pb2.RemoteConfigStatuses_APPLIED else "FAILED",
            error=error,
            sent=changed is not None,
        )
        if changed is not None:
            # Remote config status and (after an apply) the effective config in one report.
            agent.send(client.build_full_state_message())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--service", default="python-interop-agent")
    args = parser.parse_args()

    client = RecordingClient(
        endpoint=args.url,
        timeout_millis=10_000,
        agent_identifying_attributes={"service.name": args.service, "service.version": "0.5b0"},
        agent_non_identifying_attributes={"os.type": "linux", "telemetry.sdk.language": "python"},
    )
    agent = OpAMPAgent(interval=args.heartbeat, callbacks=Callbacks(), client=client)
    emit("started", instance_uid=client._instance_uid.hex(), capabilities=int(client._capabilities))
    agent.start()
    deadline = time.monotonic() + args.duration
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    agent.stop(timeout=5)
    emit(
        "summary",
        responses=COUNTERS.responses,
        full_state_requests=COUNTERS.full_state_requests,
        failures=COUNTERS.failures,
        remote_configs=COUNTERS.remote_configs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
