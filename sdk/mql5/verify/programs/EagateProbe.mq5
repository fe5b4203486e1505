//+------------------------------------------------------------------+
//| EagateProbe.mq5 (test-only, not shipped)                         |
//| Client scenarios the live test drives through the shim:          |
//|   burst       Config until the server has answered 429 at least  |
//|               twice; every call must still succeed.              |
//|   ack-twice   Ack InpSignalId twice with one outcome (same       |
//|               receipt), then with another (ack-conflict, not     |
//|               retried).                                          |
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
         Problem("unknown scenario " + InpScenario);
   Print("probe: ", InpScenario, " done, ", IntegerToString(g_problems), " problems");
   SetReturnError(g_problems == 0 ? 0 : 1);
  }
