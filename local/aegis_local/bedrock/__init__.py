"""A Bedrock runtime on 127.0.0.1 that speaks Converse on its wire protocol, validated against botocore's service
model, with three models for the agent's analyst: `scripted`, `adversarial` and `failing` (see `.models`).
Token usage is an estimate: ceil(characters / 4) of the request's texts and of the answer's JSON."""

from aegis_local.bedrock.app import CallLog, ModelCall
from aegis_local.bedrock.emulator import DEFAULT_FAILING_DELAY_SECONDS, BedrockEmulator, EmulatorNotRunning
from aegis_local.bedrock.models import (
    ANSWERED,
    DATA_BEGIN,
    DATA_END,
    DELAYED,
    FLOODED,
    INVALID_REQUEST,
    MALFORMED,
    MODEL_IDS,
    NO_DATA,
    THROTTLED,
    UNKNOWN_MODEL,
)

__all__ = [
    "ANSWERED",
    "DATA_BEGIN",
    "DATA_END",
    "DEFAULT_FAILING_DELAY_SECONDS",
    "DELAYED",
    "FLOODED",
    "INVALID_REQUEST",
    "MALFORMED",
    "MODEL_IDS",
    "NO_DATA",
    "THROTTLED",
    "UNKNOWN_MODEL",
    "BedrockEmulator",
    "CallLog",
    "EmulatorNotRunning",
    "ModelCall",
]
