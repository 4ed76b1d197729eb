"""Schemathesis hooks of the contract run (tests/contract/run.sh).

The API takes CSV files (imports of categories, responsibilities, regions,
pairs, buildings) documented as `text/csv` with a string schema; schemathesis
has no serializer for that media type, so the generated string is sent as its
UTF-8 bytes, as a client uploading a file would.
"""

import schemathesis


@schemathesis.serializer("text/csv")
def csv_body(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")


# RFC 9110 field values are visible ASCII, obs-text, space and tab. A
# request with another control character in a header is not HTTP: the server
# (hyper) refuses it with a bare `400` before any route runs, so it says
# nothing about the API. schemathesis 4.3 generates such values; later
# releases stop doing so in positive mode (schemathesis#3696, #3706).
_NOT_FIELD_VALUE = set(chr(c) for c in range(0x20) if c != 0x09) | {"\x7f"}


@schemathesis.hook
def filter_headers(ctx, headers):
    # Negative cases arrive wrapped (a value with its mutation's metadata).
    headers = getattr(headers, "value", headers)
    if not isinstance(headers, dict):
        return True
    return not any(
        isinstance(v, str) and any(ch in _NOT_FIELD_VALUE for ch in v)
        for v in headers.values()
    )
