"""Why a browser blocks a CORS response, in Chromium's and Firefox's own vocabulary.

Chromium's names are `network::mojom::CorsError` (the DevTools protocol's `Network.CorsError`); the
messages follow Blink's `cors_error_string.cc`. Firefox's keys are those of `security.properties`
(`CORSMissingAllowOrigin2`, ...); see BROWSERS.md §6.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """A Chromium `CorsError` name. The value is the name, so it serialises as-is."""

    DisallowedByMode = "DisallowedByMode"
    InvalidResponse = "InvalidResponse"
    WildcardOriginNotAllowed = "WildcardOriginNotAllowed"
    MissingAllowOriginHeader = "MissingAllowOriginHeader"
    MultipleAllowOriginValues = "MultipleAllowOriginValues"
    InvalidAllowOriginValue = "InvalidAllowOriginValue"
    AllowOriginMismatch = "AllowOriginMismatch"
    InvalidAllowCredentials = "InvalidAllowCredentials"
    CorsDisabledScheme = "CorsDisabledScheme"
    PreflightInvalidStatus = "PreflightInvalidStatus"
    PreflightDisallowedRedirect = "PreflightDisallowedRedirect"
    PreflightWildcardOriginNotAllowed = "PreflightWildcardOriginNotAllowed"
    PreflightMissingAllowOriginHeader = "PreflightMissingAllowOriginHeader"
    PreflightMultipleAllowOriginValues = "PreflightMultipleAllowOriginValues"
    PreflightInvalidAllowOriginValue = "PreflightInvalidAllowOriginValue"
    PreflightAllowOriginMismatch = "PreflightAllowOriginMismatch"
    PreflightInvalidAllowCredentials = "PreflightInvalidAllowCredentials"
    InvalidAllowMethodsPreflightResponse = "InvalidAllowMethodsPreflightResponse"
    InvalidAllowHeadersPreflightResponse = "InvalidAllowHeadersPreflightResponse"
    MethodDisallowedByPreflightResponse = "MethodDisallowedByPreflightResponse"
    HeaderDisallowedByPreflightResponse = "HeaderDisallowedByPreflightResponse"
    RedirectContainsCredentials = "RedirectContainsCredentials"


class FirefoxReason(enum.StrEnum):
    """A Firefox `security.properties` key, as printed in "(Reason: ...)"."""

    CORSDidNotSucceed = "CORSDidNotSucceed2"
    CORSRequestNotHttp = "CORSRequestNotHttp"
    CORSMultipleAllowOriginNotAllowed = "CORSMultipleAllowOriginNotAllowed"
    CORSMissingAllowOrigin = "CORSMissingAllowOrigin2"
    CORSNotSupportingCredentials = "CORSNotSupportingCredentials"
    CORSAllowOriginNotMatchingOrigin = "CORSAllowOriginNotMatchingOrigin"
    CORSMissingAllowCredentials = "CORSMissingAllowCredentials"
    CORSExternalRedirectNotAllowed = "CORSExternalRedirectNotAllowed"
    CORSPreflightDidNotSucceed = "CORSPreflightDidNotSucceed3"
    CORSInvalidAllowMethod = "CORSInvalidAllowMethod"
    CORSMethodNotFound = "CORSMethodNotFound"
    CORSInvalidAllowHeader = "CORSInvalidAllowHeader"
    CORSMissingAllowHeaderFromPreflight = "CORSMissingAllowHeaderFromPreflight2"


# Chromium reports the CORS-check failures of a preflight response under their kPreflight* twin
# (CheckPreflightAccess in services/network/cors/preflight_controller.cc).
PREFLIGHT_VARIANT: dict[Reason, Reason] = {
    Reason.WildcardOriginNotAllowed: Reason.PreflightWildcardOriginNotAllowed,
    Reason.MissingAllowOriginHeader: Reason.PreflightMissingAllowOriginHeader,
    Reason.MultipleAllowOriginValues: Reason.PreflightMultipleAllowOriginValues,
    Reason.InvalidAllowOriginValue: Reason.PreflightInvalidAllowOriginValue,
    Reason.AllowOriginMismatch: Reason.PreflightAllowOriginMismatch,
    Reason.InvalidAllowCredentials: Reason.PreflightInvalidAllowCredentials,
}

# Chromium prefixes the text of every failure of the preflight itself (cors_error_string.cc).
_PREFLIGHT_PREFIX = "Response to preflight request doesn't pass access control check: "
PREFLIGHT_BASE: dict[Reason, Reason] = {v: k for k, v in PREFLIGHT_VARIANT.items()}
_PREFIXED: frozenset[Reason] = frozenset(
    {*PREFLIGHT_BASE, Reason.PreflightInvalidStatus, Reason.PreflightDisallowedRedirect}
)


def chromium_text(reason: Reason, value: str = "") -> str:
    """Chromium's console text for `reason` (after "...has been blocked by CORS policy: ").

    `value` is Chromium's `failed_parameter`: the offending header value, method or header name.
    """
    text = (_BASE_TEXT.get(PREFLIGHT_BASE.get(reason, reason)) or reason.value).format(value=value)
    return _PREFLIGHT_PREFIX + text if reason in _PREFIXED else text


_BASE_TEXT: dict[Reason, str] = {
    Reason.DisallowedByMode: "Cross origin requests are not allowed by request mode.",
    Reason.InvalidResponse: "The response is invalid.",
    Reason.WildcardOriginNotAllowed: (
        "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard "
        "'*' when the request's credentials mode is 'include'."
    ),
    Reason.MissingAllowOriginHeader: ("No 'Access-Control-Allow-Origin' header is present on the requested resource."),
    Reason.MultipleAllowOriginValues: (
        "The 'Access-Control-Allow-Origin' header contains multiple values '{value}', but only one is allowed."
    ),
    Reason.InvalidAllowOriginValue: ("The 'Access-Control-Allow-Origin' header contains the invalid value '{value}'."),
    Reason.AllowOriginMismatch: (
        "The 'Access-Control-Allow-Origin' header has a value '{value}' that is not equal to the supplied origin."
    ),
    Reason.InvalidAllowCredentials: (
        "The value of the 'Access-Control-Allow-Credentials' header in the response is '{value}' which must "
        "be 'true' when the request's credentials mode is 'include'."
    ),
    Reason.CorsDisabledScheme: (
        "Cross origin requests are only supported for protocol schemes: http, https, chrome-extension, data."
    ),
    Reason.PreflightInvalidStatus: "It does not have HTTP ok status.",
    Reason.PreflightDisallowedRedirect: "Redirect is not allowed for a preflight request.",
    Reason.InvalidAllowMethodsPreflightResponse: (
        "Cannot parse Access-Control-Allow-Methods response header field in preflight response."
    ),
    Reason.InvalidAllowHeadersPreflightResponse: (
        "Cannot parse Access-Control-Allow-Headers response header field in preflight response."
    ),
    Reason.MethodDisallowedByPreflightResponse: (
        "Method {value} is not allowed by Access-Control-Allow-Methods in preflight response."
    ),
    Reason.HeaderDisallowedByPreflightResponse: (
        "Request header field {value} is not allowed by Access-Control-Allow-Headers in preflight response."
    ),
    Reason.RedirectContainsCredentials: (
        "Redirect location '{value}' contains a username and password, which is disallowed for cross-origin requests."
    ),
}
