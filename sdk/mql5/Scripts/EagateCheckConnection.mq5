//+------------------------------------------------------------------+
//| EagateCheckConnection.mq5                                        |
//| Checks a device's settings against the server: one signed        |
//| GET /api/v1/device/config. Prints the device's name, the         |
//| server's poll settings and the terminal's clock offset, or what  |
//| is wrong (URL not allowed, wrong secret, revoked device...).     |
//+------------------------------------------------------------------+
#property copyright "eagate"
#property version   "1.00"
#property description "Checks the eagate server URL, device id and secret with one signed request."
#property script_show_inputs

#include <Eagate/Eagate.mqh>

input string InpServerUrl = "https://eagate.example.com"; // eagate server URL (origin only)
input string InpDeviceId = "";                            // Device id
input string InpDeviceSecret = "";                        // Device secret (eags_...)
input bool   InpDebug = false;                            // Log every request (never the secret)

//+------------------------------------------------------------------+
void OnStart()
  {
   CEagateClient client;
   if(!client.Init(InpServerUrl, InpDeviceId, InpDeviceSecret))
     {
      Alert("eagate: ", client.LastError());
      SetReturnError(2);
      return;
     }
   client.SetDebug(InpDebug);
   EagateConfig config;
   if(!client.Config(config))
     {
      Alert("eagate: the check failed: ", client.LastError());
      SetReturnError(1);
      return;
     }
   Print("eagate: connected as device '", config.name, "' (", config.device_id, ")");
   Print("eagate: poll interval ", IntegerToString(config.poll_interval_seconds), " s, long-poll maximum ",
         IntegerToString(config.long_poll_max_seconds), " s");
   Print("eagate: clock offset ", IntegerToString(client.ClockOffset()), " s (server time minus this computer's), ",
         IntegerToString(client.ClockCorrectionCount()), " corrections, ", IntegerToString(client.RequestCount()), " requests");
   SetReturnError(0);
  }
