//+------------------------------------------------------------------+
//| EagateSelfTest.mq5                                               |
//| Runs the eagate SDK's offline self-tests in this terminal:       |
//| SHA-256 and HMAC through CryptEncode, the JSON reader, and every |
//| published protocol v1 vector, byte for byte. Sends nothing.      |
//+------------------------------------------------------------------+
#property copyright "eagate"
#property version   "1.00"
#property description "Offline self-test of the eagate SDK: crypto, JSON and the published protocol vectors."

#include <Eagate/SelfTest.mqh>

//+------------------------------------------------------------------+
void OnStart()
  {
   int failures = EagateRunSelfTests();
   if(failures == 0)
      Print("eagate self-test: all checks passed; this terminal signs exactly like the eagate server expects");
   else
      Alert("eagate self-test: ", IntegerToString(failures), " checks failed; see the Experts log");
   SetReturnError(failures == 0 ? 0 : 1);
  }
