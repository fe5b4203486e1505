"""eagate device client for Python: the same API as the MQL5 SDK
(sdk/mql5) and the Rust SDK (crates/client), standard library only.

    from eagate_client import DeviceClient, Outcome

    client = DeviceClient("https://eagate.example.com", device_id, secret)
    client.heartbeat(ea_version="1.0", balance=10250.75)
    for signal in client.poll(wait=20):
        ...  # execute it, idempotently
        client.ack(signal.id, Outcome.EXECUTED, ticket=4812, fill_price=1.0851)

Signing without HTTP: eagate_client.signing (docs/protocol.md).
"""

from .client import (
    AckReceipt,
    DeviceClient,
    DeviceConfig,
    EagateError,
    Outcome,
    Signal,
    TradingConfig,
    TransportError,
    urllib_transport,
)
from .signing import body_sha256_hex, new_nonce, order_tag, sign_headers, signature, string_to_sign

__version__ = "1.1.0"

__all__ = [
    "AckReceipt",
    "DeviceClient",
    "DeviceConfig",
    "EagateError",
    "Outcome",
    "Signal",
    "TradingConfig",
    "TransportError",
    "urllib_transport",
    "body_sha256_hex",
    "new_nonce",
    "order_tag",
    "sign_headers",
    "signature",
    "string_to_sign",
]
