//+------------------------------------------------------------------+
//| Eagate/Eagate.mqh                                                |
//| The eagate device SDK for MQL5: one include for an Expert        |
//| Advisor.                                                         |
//|                                                                  |
//|   #include <Eagate/Eagate.mqh>                                   |
//|                                                                  |
//| Crypto.mqh    SHA-256 (CryptEncode), HMAC-SHA256, hex, base64url |
//| Json.mqh      CEagateJson, a strict JSON reader; JSON escaping   |
//| Protocol.mqh  protocol v1: string to sign, signature, nonces     |
//| Client.mqh    CEagateClient: Poll, Ack, Heartbeat, Config        |
//|                                                                  |
//| See docs/mql5.md in the eagate repository.                       |
//+------------------------------------------------------------------+
#ifndef EAGATE_MQH
#define EAGATE_MQH

#include "Crypto.mqh"
#include "Json.mqh"
#include "Protocol.mqh"
#include "Client.mqh"

#endif
