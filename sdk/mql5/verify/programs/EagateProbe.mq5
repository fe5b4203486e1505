//+------------------------------------------------------------------+
//| EagateProbe.mq5 (test-only, not shipped)                         |
//| Client scenarios the live test drives through the shim:          |
//|   burst       Config until the server has answered 429 at least  |
//|               twice; every call must still succeed.              |
//|   ack-twice   Ack InpSignalId twice with one outcome (same       |
//|               receipt), then with another (ack-conflict, not     |
//|               retried).                                          |
//|   config      Config, then ConfigIfChanged (304), a poll's       |
//|               config_revision; prints the trading fields.        |
//+------------------------------------------------------------------+
#property copyright "eagate"
#property version   "1.00"

#include <Eagate/Eagate.mqh>

input string InpServerUrl = "http://127.0.0.1:8080";
input string InpDeviceId = "";
input string InpDeviceSecret = "";
input string InpScenario = "burst";
input string InpSignalId = "";

CEagateClient g_probe;
int           g_problems = 0;

//+------------------------------------------------------------------+
void Problem(const string what)
  {
   g_problems++;
   Print("probe: PROBLEM ", what);
  }

//+------------------------------------------------------------------+
void Burst(void)
  {
   EagateConfig config;
   int calls = 0;
   while(calls < 300 && g_probe.RateLimitedCount() < 2)
     {
      calls++;
      if(!g_probe.Config(config))
         Problem("call " + IntegerToString(calls) + " failed: " + g_probe.LastError());
     }
   Print("probe: burst calls=", IntegerToString(calls), " requests=", IntegerToString(g_probe.RequestCount()),
         " rate_limited=", IntegerToString(g_probe.RateLimitedCount()), " retries=", IntegerToString(g_probe.RetryCount()));
   if(g_probe.RateLimitedCount() < 2)
      Problem("the server never answered 429");
  }

//+------------------------------------------------------------------+
void AckTwice(void)
  {
   EagateAckReceipt first;
   EagateAckReceipt second;
   if(!g_probe.Ack(InpSignalId, EAGATE_REJECTED, 0, 0.0, "probe: first", first))
      Problem("first ack failed: " + g_probe.LastError());
   if(!g_probe.Ack(InpSignalId, EAGATE_REJECTED, 0, 0.0, "probe: second", second))
      Problem("second ack failed: " + g_probe.LastError());
   if(first.acknowledged_at == "" || first.acknowledged_at != second.acknowledged_at || second.message != "probe: first")
      Problem("a repeated ack did not return the first receipt");
   long before = g_probe.RequestCount();
   if(g_probe.Ack(InpSignalId, EAGATE_EXECUTED, 7, 1.5, ""))
      Problem("a conflicting ack succeeded");
   if(g_probe.LastCode() != "ack-conflict" || g_probe.LastStatus() != 409)
      Problem("a conflicting ack gave " + g_probe.LastError());
   if(g_probe.RequestCount() - before != 1)
      Problem("a 409 was retried");
   Print("probe: ack-twice receipt outcome=", first.outcome, " at ", first.acknowledged_at, "; conflict: ", g_probe.LastError());
  }

//+------------------------------------------------------------------+
void ConfigScenario(void)
  {
   EagateConfig config;
   if(!g_probe.Config(config))
     {
      Problem("config failed: " + g_probe.LastError());
      return;
     }
   Print("probe: config revision=", IntegerToString(config.config_revision), " etag=", config.etag,
         " mode=", config.mode, " sizing=", config.sizing_type, ":", EagateJsonNumber(config.sizing_value),
         " max_lot=", EagateJsonNumber(config.max_lot), " allowed=", config.allowed_symbols,
         " map=", config.symbol_map, " gold=", EagateMapSymbol(config, "XAUUSD"),
         " eurusd_allowed=", EagateSymbolAllowed(config, "EURUSD") ? "yes" : "no",
         " magic=", IntegerToString(config.magic_number), " slippage=", IntegerToString(config.slippage_points));
   if(!g_probe.ConfigIfChanged(config))
      Problem("conditional config failed: " + g_probe.LastError());
   if(!config.not_modified || g_probe.LastStatus() != 304)
      Problem("an unchanged configuration was not answered 304 (status " + IntegerToString(g_probe.LastStatus()) + ")");
   EagateSignal signals[];
   if(!g_probe.Poll(0, signals))
      Problem("poll failed: " + g_probe.LastError());
   if(g_probe.ConfigRevision() != config.config_revision)
      Problem("the poll reported revision " + IntegerToString(g_probe.ConfigRevision()));
  }

//+------------------------------------------------------------------+
void OnStart()
  {
   if(!g_probe.Init(InpServerUrl, InpDeviceId, InpDeviceSecret))
     {
      Print("probe: ", g_probe.LastError());
      SetReturnError(2);
      return;
     }
   if(InpScenario == "burst")
      Burst();
   else
      if(InpScenario == "ack-twice")
         AckTwice();
      else
         if(InpScenario == "config")
            ConfigScenario();
         else
            Problem("unknown scenario " + InpScenario);
   Print("probe: ", InpScenario, " done, ", IntegerToString(g_problems), " problems");
   SetReturnError(g_problems == 0 ? 0 : 1);
  }
