"""The error dialects of the emulated tenant: Auth0's three APIs, each as Auth0 shapes it, plus the phone side."""

from __future__ import annotations

from abc import ABC, abstractmethod
from http import HTTPStatus
from typing import Any


class EmulatorError(Exception, ABC):
    """An error answer: its HTTP status, extra response headers, and the body in its API's dialect."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    @abstractmethod
    def body(self) -> dict[str, Any]: ...

    @property
    def media_type(self) -> str:
        return "application/json"


class OAuthError(EmulatorError):
    """Authentication API errors: `{error, error_description}`."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, f"{status} {error}: {description}", headers)
        self.error = error
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


class ManagementApiError(EmulatorError):
    """Management API errors: `{statusCode, error, message, errorCode}`."""

    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(status, f"{status} {error_code}: {message}")
        self.message = message
        self.error_code = error_code

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "error": HTTPStatus(self.status).phrase,
            "message": self.message,
            "errorCode": self.error_code,
        }


class MyAccountError(EmulatorError):
    """My Account API errors: RFC 7807 problem details `{type, status, title, detail}`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, f"{status}: {detail}")
        self.detail = detail

    def body(self) -> dict[str, Any]:
        phrase = HTTPStatus(self.status).phrase
        return {
            "type": f"https://auth0.com/api-errors/{phrase.lower().replace(' ', '-')}",
            "status": self.status,
            "title": phrase,
            "detail": self.detail,
        }

    @property
    def media_type(self) -> str:
        return "application/problem+json"


class GuardianError(EmulatorError):
    """Errors of the phone side (not an Auth0 API): `{error, message}`."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(status, f"{status} {error}: {message}")
        self.error = error
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message}
