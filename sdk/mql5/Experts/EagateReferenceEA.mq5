//+------------------------------------------------------------------+
//| EagateReferenceEA.mq5                                            |
//| Executes eagate signals: long-polls the server, trades each      |
//| signal with CTrade, acknowledges the outcome and sends           |
//| heartbeats. Idempotent across restarts: a signal delivered again |
//| (its acknowledgement was lost) is acknowledged, never traded     |
//| twice. Follows the device's trading configuration (fetched with  |
//| If-None-Match whenever a poll reports a new config_revision):    |
//| mode, risk_percent sizing, max_lot, magic number, slippage,      |
//| max_open_trades, max_daily_loss; closes its positions on         |
//| action close. Downloads the bundles deployed to the device into  |
//| MQL5\Files (resumable, SHA-256 verified) and reports the status. |
//|                                                                  |
//| Before attaching it: Tools > Options > Expert Advisors > Allow   |
//| WebRequest for listed URL, add the server URL. See docs/mql5.md. |
//+------------------------------------------------------------------+
#property copyright "eagate"
#property version   "1.20"
#property description "Executes eagate trading signals and acknowledges them."
#property description "Allow the server URL under Tools > Options > Expert Advisors > Allow WebRequest."

#include <Trade/Trade.mqh>
#include <Eagate/Eagate.mqh>

#define EA_NAME "EagateReferenceEA"
// Sent as the heartbeat's ea_version: upload this build's bundle with
// exactly this version, so the server can confirm a deployment of it.
#define EA_VERSION "1.2.0"

input string InpServerUrl = "https://eagate.example.com"; // eagate server URL (origin only)
input string InpDeviceId = "";                            // Device id
input string InpDeviceSecret = "";                        // Device secret (eags_...)
input int    InpPollWaitSeconds = 20;                     // Long-poll wait, 0-30 s (the EA waits inside it)
input int    InpHeartbeatSeconds = 60;                    // Heartbeat interval, seconds
input ulong  InpMagic = 5524001;                          // Magic number (the configuration's magic_number wins)
input int    InpDeviationPoints = 20;                     // Maximum slippage, points (the configuration's slippage_points wins)
input double InpVolumeMultiplier = 1.0;                   // Multiply every signal's volume by
input string InpSymbolSuffix = "";                        // Broker symbol suffix (EURUSD -> EURUSD.m)
input bool   InpInstallDeployments = true;                // Download bundles deployed to this device (into MQL5\Files)
input int    InpDownloadChunkKiB = 1024;                  // Bundle download: KiB per request (a broken one is resumed)
input bool   InpDebug = false;                            // Log every request (never the secret)

CEagateClient g_client;
CTrade        g_trade;
bool          g_halted = false;
long          g_last_heartbeat = 0;
long          g_next_attempt = 0;
int           g_failures = 0;
long          g_handled = 0;
EagateConfig  g_config;
bool          g_have_config = false;
long          g_deployment_revision = -1;
ulong         g_magic = 0;

//+------------------------------------------------------------------+
int OnInit()
  {
   if(MQLInfoInteger(MQL_TESTER) != 0)
     {
      Print(EA_NAME, ": WebRequest is not available in the Strategy Tester; run the EA on a chart");
      return INIT_FAILED;
     }
   if(InpPollWaitSeconds < 0 || InpPollWaitSeconds > 30)
     {
      Print(EA_NAME, ": the long-poll wait must be 0-30 seconds");
      return INIT_PARAMETERS_INCORRECT;
     }
   if(InpHeartbeatSeconds < 10)
     {
      Print(EA_NAME, ": the heartbeat interval must be at least 10 seconds");
      return INIT_PARAMETERS_INCORRECT;
     }
   if(!(InpVolumeMultiplier > 0.0))
     {
      Print(EA_NAME, ": the volume multiplier must be positive");
      return INIT_PARAMETERS_INCORRECT;
     }
   if(InpDownloadChunkKiB < 4 || InpDownloadChunkKiB > 16384)
     {
      Print(EA_NAME, ": the download chunk must be 4-16384 KiB");
      return INIT_PARAMETERS_INCORRECT;
     }
   if(!g_client.Init(InpServerUrl, InpDeviceId, InpDeviceSecret))
     {
      Print(EA_NAME, ": ", g_client.LastError());
      return INIT_PARAMETERS_INCORRECT;
     }
   g_client.SetDebug(InpDebug);
   g_client.SetDownloadChunk(InpDownloadChunkKiB * 1024);
   g_trade.SetExpertMagicNumber(InpMagic);
   g_trade.SetDeviationInPoints(InpDeviationPoints);
   g_magic = InpMagic;
   g_halted = false;
   g_last_heartbeat = 0;
   g_next_attempt = 0;
   g_failures = 0;
   g_have_config = false;
   g_config.etag = "";
   g_deployment_revision = -1;
   if(!EventSetTimer(1))
     {
      Print(EA_NAME, ": could not start the timer");
      return INIT_FAILED;
     }
   Print(EA_NAME, " ", EA_VERSION, " (eagate MQL5 SDK ", EAGATE_SDK_VERSION, "): device ", g_client.DeviceId(), " on ", InpServerUrl);
   return INIT_SUCCEEDED;
  }

//+------------------------------------------------------------------+
void OnDeinit(const int reason)
  {
   EventKillTimer();
   Comment("");
  }

//+------------------------------------------------------------------+
void OnTick()
  {
  }

//+------------------------------------------------------------------+
//| Stops on errors a person must fix; backs off on the others.      |
//+------------------------------------------------------------------+
void OnFailure(const string context)
  {
   string code = g_client.LastCode();
   if(g_client.LastErrorIsFatal())
     {
      g_halted = true;
      EventKillTimer();
      string advice = "";
      if(code == "invalid-signature")
         advice = " Check the device id and secret (copy them again; after a rotation use the new secret).";
      if(code == "device-revoked")
         advice = " The owner revoked this device; only they can register a new one.";
      Alert(EA_NAME, " stopped: ", context, " failed: ", g_client.LastError(), advice);
      Comment(EA_NAME, " STOPPED: ", g_client.LastError());
      return;
     }
   g_failures++;
   int pause = MathMin(60, 1 << MathMin(g_failures, 6));
   g_next_attempt = (long)TimeLocal() + pause;
   Print(EA_NAME, ": ", context, " failed: ", g_client.LastError(), "; next attempt in ", IntegerToString(pause), " s");
  }

//+------------------------------------------------------------------+
//| Terminal global variables remembering what was done with a       |
//| signal: outcome, ticket and fill price (kept by the terminal     |
//| across restarts; deleted after four weeks without access).       |
//+------------------------------------------------------------------+
string MemoryName(const string tag, const string field)
  {
   return "eagate." + field + "." + StringSubstr(tag, 7);
  }

//+------------------------------------------------------------------+
void Remember(const string tag, const ENUM_EAGATE_OUTCOME outcome, const long ticket, const double price)
  {
   GlobalVariableSet(MemoryName(tag, "t"), (double)ticket);
   GlobalVariableSet(MemoryName(tag, "p"), price);
   GlobalVariableSet(MemoryName(tag, "o"), (double)outcome);
   GlobalVariablesFlush();
  }

//+------------------------------------------------------------------+
bool Recall(const string tag, ENUM_EAGATE_OUTCOME &outcome, long &ticket, double &price)
  {
   if(!GlobalVariableCheck(MemoryName(tag, "o")))
      return false;
   int code = (int)GlobalVariableGet(MemoryName(tag, "o"));
   outcome = EAGATE_FAILED;
   if(code == EAGATE_EXECUTED)
      outcome = EAGATE_EXECUTED;
   if(code == EAGATE_REJECTED)
      outcome = EAGATE_REJECTED;
   ticket = (long)GlobalVariableGet(MemoryName(tag, "t"));
   price = GlobalVariableGet(MemoryName(tag, "p"));
   return true;
  }

//+------------------------------------------------------------------+
//| The fill price of an order, from the history already selected.   |
//+------------------------------------------------------------------+
double DealPriceOfOrder(const ulong order)
  {
   for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
     {
      ulong deal = HistoryDealGetTicket(i);
      if(deal > 0 && (ulong)HistoryDealGetInteger(deal, DEAL_ORDER) == order)
         return HistoryDealGetDouble(deal, DEAL_PRICE);
     }
   return 0.0;
  }

//+------------------------------------------------------------------+
//| Looks for an order this EA placed for the signal (its comment    |
//| starts with the signal's tag): pending orders, then the history  |
//| around the signal's creation. Covers a crash between the order   |
//| and the memory above, and a terminal that lost its globals.      |
//+------------------------------------------------------------------+
bool FindOrder(const EagateSignal &signal, const string tag, long &ticket, double &price)
  {
   for(int i = OrdersTotal() - 1; i >= 0; i--)
     {
      ulong order = OrderGetTicket(i);
      if(order > 0 && StringFind(OrderGetString(ORDER_COMMENT), tag) == 0)
        {
         ticket = (long)order;
         price = 0.0;
         return true;
        }
     }
   // History times are the trade server's (any time zone): search wide.
   long from = 0;
   if(signal.created_at_unix > 0)
      from = signal.created_at_unix - 2 * 86400;
   if(!HistorySelect((datetime)from, TimeCurrent() + 86400))
      return false;
   for(int i = HistoryOrdersTotal() - 1; i >= 0; i--)
     {
      ulong order = HistoryOrderGetTicket(i);
      if(order > 0 && StringFind(HistoryOrderGetString(order, ORDER_COMMENT), tag) == 0)
        {
         ticket = (long)order;
         price = DealPriceOfOrder(order);
         return true;
        }
     }
   return false;
  }

//+------------------------------------------------------------------+
//| Rounds a volume down to the symbol's step; -1 (and a reason) if  |
//| the result is outside the broker's limits.                       |
//+------------------------------------------------------------------+
double NormalizeVolume(const string symbol, const double wanted, string &reason)
  {
   double min_volume = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MIN);
   double max_volume = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MAX);
   double step = SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP);
   if(step <= 0.0)
      step = min_volume;
   int decimals = 0;
   while(decimals < 8 && MathAbs(step * MathPow(10.0, decimals) - MathRound(step * MathPow(10.0, decimals))) > 1e-9)
      decimals++;
   double volume = NormalizeDouble(MathFloor(wanted / step + 1e-9) * step, decimals);
   if(volume < min_volume)
     {
      reason = "volume " + DoubleToString(wanted, 8) + " is below the broker's minimum " + DoubleToString(min_volume, decimals) + " for " + symbol;
      return -1.0;
     }
   if(volume > max_volume)
     {
      reason = "volume " + DoubleToString(wanted, 8) + " is above the broker's maximum " + DoubleToString(max_volume, decimals) + " for " + symbol;
      return -1.0;
     }
   return volume;
  }

//+------------------------------------------------------------------+
//| Fetches the trading configuration when none is known or the last |
//| poll reported another revision (304 while unchanged), and applies|
//| its magic number and slippage.                                   |
//+------------------------------------------------------------------+
bool RefreshConfig(void)
  {
   if(g_have_config && g_client.ConfigRevision() == g_config.config_revision)
      return true;
   if(!g_client.ConfigIfChanged(g_config))
      return false;
   g_have_config = true;
   if(g_config.not_modified)
      return true;
   ulong magic = InpMagic;
   if(g_config.magic_number >= 0)
      magic = (ulong)g_config.magic_number;
   int deviation = InpDeviationPoints;
   if(g_config.slippage_points >= 0)
      deviation = (int)g_config.slippage_points;
   g_trade.SetExpertMagicNumber(magic);
   g_trade.SetDeviationInPoints(deviation);
   g_magic = magic;
   string sizing = g_config.sizing_type + " " + EagateJsonNumber(g_config.sizing_value);
   Print(EA_NAME, ": configuration revision ", IntegerToString(g_config.config_revision), ": mode ", g_config.mode,
         ", sizing ", sizing, ", max_lot ", EagateJsonNumber(g_config.max_lot), ", magic ", IntegerToString((long)magic),
         ", slippage ", IntegerToString(deviation), ", max_open_trades ", IntegerToString(g_config.max_open_trades),
         ", max_daily_loss ", EagateJsonNumber(g_config.max_daily_loss));
   return true;
  }

//+------------------------------------------------------------------+
//| The volume that risks risk_percent of the balance at the stop    |
//| distance, at most the delivered volume (the server capped it     |
//| with max_lot); -1 (and a reason) when it cannot be computed.     |
//+------------------------------------------------------------------+
double RiskVolume(const EagateSignal &signal, const string symbol, const bool buy, string &reason)
  {
   if(!(signal.stop_loss > 0.0))
     {
      reason = "risk_percent sizing needs a stop loss";
      return -1.0;
     }
   double entry = signal.entry_price;
   if(signal.order_type == "market")
      entry = buy ? SymbolInfoDouble(symbol, SYMBOL_ASK) : SymbolInfoDouble(symbol, SYMBOL_BID);
   double tick_size = SymbolInfoDouble(symbol, SYMBOL_TRADE_TICK_SIZE);
   double tick_value = SymbolInfoDouble(symbol, SYMBOL_TRADE_TICK_VALUE);
   double distance = MathAbs(entry - signal.stop_loss);
   if(!(tick_size > 0.0) || !(tick_value > 0.0) || !(distance > 0.0))
     {
      reason = "risk_percent sizing: no tick value or stop distance for " + symbol;
      return -1.0;
     }
   double loss_per_lot = distance / tick_size * tick_value;
   double risk = AccountInfoDouble(ACCOUNT_BALANCE) * g_config.sizing_value / 100.0;
   return MathMin(risk / loss_per_lot, signal.volume);
  }

//+------------------------------------------------------------------+
//| The EA's open positions (its magic number), all symbols.         |
//+------------------------------------------------------------------+
int CountOwnPositions(void)
  {
   int count = 0;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
      if(PositionGetTicket(i) > 0 && (ulong)PositionGetInteger(POSITION_MAGIC) == g_magic)
         count++;
   return count;
  }

//+------------------------------------------------------------------+
//| Today's loss of this EA (its magic number) in account currency,  |
//| 0 when it is up: the closed deals since the trade server's       |
//| midnight (profit, swap and commission) plus the floating profit  |
//| of its open positions.                                           |
//+------------------------------------------------------------------+
double TodaysLoss(void)
  {
   long now = (long)TimeCurrent();
   long midnight = now - now % 86400;
   double result = 0.0;
   if(HistorySelect((datetime)midnight, (datetime)(now + 60)))
      for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
        {
         ulong deal = HistoryDealGetTicket(i);
         if(deal == 0 || (ulong)HistoryDealGetInteger(deal, DEAL_MAGIC) != g_magic)
            continue;
         result += HistoryDealGetDouble(deal, DEAL_PROFIT) + HistoryDealGetDouble(deal, DEAL_SWAP) +
                   HistoryDealGetDouble(deal, DEAL_COMMISSION);
        }
   for(int i = PositionsTotal() - 1; i >= 0; i--)
      if(PositionGetTicket(i) > 0 && (ulong)PositionGetInteger(POSITION_MAGIC) == g_magic)
         result += PositionGetDouble(POSITION_PROFIT);
   return result < 0.0 ? -result : 0.0;
  }

//+------------------------------------------------------------------+
//| action close: closes the EA's positions on the symbol that were  |
//| opened in the signal's direction (all of them; the signal's      |
//| volume is not used). Outcome as for Execute.                     |
//+------------------------------------------------------------------+
void ClosePositions(const EagateSignal &signal, const string symbol, const bool buy, ENUM_EAGATE_OUTCOME &outcome,
                    long &ticket, double &price, string &message)
  {
   ulong tickets[];
   int n = 0;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong position = PositionGetTicket(i);
      if(position == 0 || (ulong)PositionGetInteger(POSITION_MAGIC) != g_magic || PositionGetString(POSITION_SYMBOL) != symbol)
         continue;
      long type = PositionGetInteger(POSITION_TYPE);
      if((buy && type != POSITION_TYPE_BUY) || (!buy && type != POSITION_TYPE_SELL))
         continue;
      ArrayResize(tickets, n + 1);
      tickets[n] = position;
      n++;
     }
   if(n == 0)
     {
      outcome = EAGATE_REJECTED;
      message = "no open " + signal.side + " position of this EA on " + symbol + " to close";
      return;
     }
   int closed = 0;
   string list = "";
   for(int i = 0; i < n; i++)
     {
      if(!g_trade.PositionClose(tickets[i]))
        {
         outcome = closed > 0 ? EAGATE_EXECUTED : EAGATE_FAILED;
         message = "closing position " + IntegerToString((long)tickets[i]) + ": trade server retcode " +
                   IntegerToString(g_trade.ResultRetcode()) + ": " + g_trade.ResultRetcodeDescription();
         if(closed > 0)
            message = "closed " + IntegerToString(closed) + " of " + IntegerToString(n) + " positions (" + list + "); " + message;
         return;
        }
      closed++;
      list += (list == "" ? "" : ", ") + IntegerToString((long)tickets[i]);
      ticket = (long)g_trade.ResultOrder();
      price = g_trade.ResultPrice();
     }
   outcome = EAGATE_EXECUTED;
   message = "closed " + IntegerToString(closed) + " " + signal.side + " position" + (closed == 1 ? "" : "s") + " on " + symbol + " (" + list + ")";
  }

//+------------------------------------------------------------------+
//| Trades one signal; the outcome goes into the out parameters.     |
//| rejected: the EA would not trade it; failed: the trade server    |
//| refused it.                                                      |
//+------------------------------------------------------------------+
void Execute(const EagateSignal &signal, const string tag, ENUM_EAGATE_OUTCOME &outcome,
             long &ticket, double &price, string &message)
  {
   outcome = EAGATE_REJECTED;
   ticket = 0;
   price = 0.0;
   message = "";
   bool buy = (signal.side == "buy");
   if(!buy && signal.side != "sell")
     {
      message = "unknown side '" + signal.side + "'";
      return;
     }
   bool market = (signal.order_type == "market");
   if(!market && signal.order_type != "limit" && signal.order_type != "stop")
     {
      message = "unknown order type '" + signal.order_type + "'";
      return;
     }
   if(signal.expires_at_unix > 0 && signal.expires_at_unix <= g_client.ServerTime())
     {
      message = "expired at " + signal.expires_at + " before it could be executed";
      return;
     }
   // The server already holds back what the mode refuses; these were
   // pending before the mode changed.
   if(g_config.mode == "paused")
     {
      message = "the device is paused";
      return;
     }
   string symbol = signal.instrument + InpSymbolSuffix;
   if(signal.action == "close")
     {
      ClosePositions(signal, symbol, buy, outcome, ticket, price, message);
      return;
     }
   if(signal.action != "open")
     {
      message = "unknown action '" + signal.action + "'";
      return;
     }
   if(g_config.mode == "close_only")
     {
      message = "the device is close_only and the signal opens a position";
      return;
     }
   if(g_config.max_open_trades > 0)
     {
      int open_trades = CountOwnPositions();
      if(open_trades >= g_config.max_open_trades)
        {
         message = "max_open_trades " + IntegerToString(g_config.max_open_trades) + " reached: " +
                   IntegerToString(open_trades) + " positions open with magic " + IntegerToString((long)g_magic);
         return;
        }
     }
   if(g_config.max_daily_loss > 0.0)
     {
      double loss = TodaysLoss();
      if(loss >= g_config.max_daily_loss)
        {
         message = "max_daily_loss " + EagateJsonNumber(g_config.max_daily_loss) + " reached: today's loss is " +
                   DoubleToString(loss, 2) + " (closed deals and open positions with magic " + IntegerToString((long)g_magic) + ")";
         return;
        }
     }
   if(!SymbolSelect(symbol, true))
     {
      message = "symbol " + symbol + " is not available at this broker";
      return;
     }
   if(SymbolInfoInteger(symbol, SYMBOL_TRADE_MODE) == SYMBOL_TRADE_MODE_DISABLED)
     {
      message = "trading is disabled for " + symbol;
      return;
     }
   double wanted = signal.volume;
   if(g_config.sizing_type == "risk_percent")
     {
      wanted = RiskVolume(signal, symbol, buy, message);
      if(wanted < 0.0)
         return;
     }
   wanted *= InpVolumeMultiplier;
   if(g_config.max_lot > 0.0 && wanted > g_config.max_lot)
      wanted = g_config.max_lot;
   double volume = NormalizeVolume(symbol, wanted, message);
   if(volume < 0.0)
      return;
   int digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
   double sl = 0.0;
   double tp = 0.0;
   if(signal.stop_loss > 0.0)
      sl = NormalizeDouble(signal.stop_loss, digits);
   if(signal.take_profit > 0.0)
      tp = NormalizeDouble(signal.take_profit, digits);
   double entry = 0.0;
   if(!market)
     {
      if(!(signal.entry_price > 0.0))
        {
         message = "a " + signal.order_type + " signal needs an entry price";
         return;
        }
      entry = NormalizeDouble(signal.entry_price, digits);
     }
   // Brokers accept different filling modes (FOK, IOC, return): use the symbol's.
   g_trade.SetTypeFillingBySymbol(symbol);
   if(market && buy)
      g_trade.Buy(volume, symbol, 0.0, sl, tp, tag);
   if(market && !buy)
      g_trade.Sell(volume, symbol, 0.0, sl, tp, tag);
   if(signal.order_type == "limit" && buy)
      g_trade.BuyLimit(volume, entry, symbol, sl, tp, ORDER_TIME_GTC, 0, tag);
   if(signal.order_type == "limit" && !buy)
      g_trade.SellLimit(volume, entry, symbol, sl, tp, ORDER_TIME_GTC, 0, tag);
   if(signal.order_type == "stop" && buy)
      g_trade.BuyStop(volume, entry, symbol, sl, tp, ORDER_TIME_GTC, 0, tag);
   if(signal.order_type == "stop" && !buy)
      g_trade.SellStop(volume, entry, symbol, sl, tp, ORDER_TIME_GTC, 0, tag);
   uint retcode = g_trade.ResultRetcode();
   if(retcode != TRADE_RETCODE_DONE && retcode != TRADE_RETCODE_DONE_PARTIAL && retcode != TRADE_RETCODE_PLACED)
     {
      string refused = "trade server retcode " + IntegerToString(retcode) + ": " + g_trade.ResultRetcodeDescription();
      // An uncertain answer (a timeout, a lost connection) may hide an
      // order the trade server did place: look before saying failed.
      if(FindOrder(signal, tag, ticket, price))
        {
         outcome = EAGATE_EXECUTED;
         message = refused + ", but order " + IntegerToString(ticket) + " was placed for this signal";
         return;
        }
      outcome = EAGATE_FAILED;
      message = refused;
      return;
     }
   outcome = EAGATE_EXECUTED;
   ticket = (long)g_trade.ResultOrder();
   if(market)
     {
      price = g_trade.ResultPrice();
      if(!(price > 0.0) && HistorySelect(TimeCurrent() - 86400, TimeCurrent() + 86400))
         price = DealPriceOfOrder(g_trade.ResultOrder());
     }
   else
      message = signal.order_type + " order placed at " + DoubleToString(entry, digits);
   if(retcode == TRADE_RETCODE_DONE_PARTIAL)
      message = "partially filled";
   if(volume != signal.volume)
      message += (message == "" ? "" : "; ") + "volume " + DoubleToString(volume, 8) + " instead of " + DoubleToString(signal.volume, 8);
  }

//+------------------------------------------------------------------+
//| Executes a signal at most once, then acknowledges it.            |
//+------------------------------------------------------------------+
void Handle(const EagateSignal &signal)
  {
   string tag = EagateOrderTag(signal.id);
   ENUM_EAGATE_OUTCOME outcome = EAGATE_REJECTED;
   long ticket = 0;
   double price = 0.0;
   string message = "";
   if(tag == "")
      message = "the signal id is not a UUID";
   else
      if(Recall(tag, outcome, ticket, price))
         message = "handled before (" + EagateOutcomeName(outcome) + "); acknowledging again";
      else
         if(FindOrder(signal, tag, ticket, price))
           {
            outcome = EAGATE_EXECUTED;
            message = "found order " + IntegerToString(ticket) + " placed for this signal earlier";
            Remember(tag, outcome, ticket, price);
           }
         else
           {
            Execute(signal, tag, outcome, ticket, price, message);
            Remember(tag, outcome, ticket, price);
           }
   g_handled++;
   string summary = "signal " + signal.id + " " + signal.side + " " + signal.order_type + " " +
                    DoubleToString(signal.volume, 2) + " " + signal.instrument + ": " + EagateOutcomeName(outcome);
   if(ticket > 0)
      summary += ", ticket " + IntegerToString(ticket);
   if(price > 0.0)
      summary += " at " + EagateJsonNumber(price);
   if(message != "")
      summary += " (" + message + ")";
   Print(EA_NAME, ": ", summary);
   if(!g_client.Ack(signal.id, outcome, ticket, price, message))
     {
      if(g_client.LastCode() == "ack-conflict" || g_client.LastCode() == "not-found")
        {
         Print(EA_NAME, ": the server refused the acknowledgement of ", signal.id, ": ", g_client.LastError());
         return;
        }
      OnFailure("acknowledgement of " + signal.id);
     }
  }

//+------------------------------------------------------------------+
//| Whether a failed report is worth repeating: not when the server  |
//| refused it for good (409 invalid-transition, 404: the deployment |
//| moved on, was cancelled or no longer targets this device).       |
//+------------------------------------------------------------------+
bool ReportRefused(const string what)
  {
   int status = g_client.LastStatus();
   if(status >= 400 && status < 500 && status != 408 && status != 429)
     {
      Print(EA_NAME, ": the server refused the ", what, " report: ", g_client.LastError());
      return true;
     }
   Print(EA_NAME, ": the ", what, " report failed: ", g_client.LastError(), "; trying again after the next poll");
   return false;
  }

//+------------------------------------------------------------------+
//| Works on the deployment the server names for this device: reports|
//| downloading, downloads the bundle into MQL5\Files as             |
//| <name>-<version>.ex5 (resumable, SHA-256 verified) and reports   |
//| installed, or failed with the reason. An EA cannot replace its   |
//| own program (MQL5 writes only under MQL5\Files): "installed"     |
//| means saved and verified, ready to be copied into MQL5\Experts;  |
//| once that build runs, its heartbeat's ea_version confirms it.    |
//| false: try again after the next poll.                            |
//+------------------------------------------------------------------+
bool CheckDeployment(void)
  {
   EagateDeployment deployment;
   bool found = false;
   if(!g_client.Deployment(deployment, found))
     {
      Print(EA_NAME, ": the deployment check failed: ", g_client.LastError(), "; trying again after the next poll");
      return false;
     }
   if(!found)
      return true;
   string label = "bundle " + deployment.bundle_name + " " + deployment.bundle_version;
   if(deployment.status == "pending")
     {
      if(!g_client.ReportDeployment(deployment.deployment_id, "downloading", ""))
         return ReportRefused("downloading");
      Print(EA_NAME, ": deployment ", deployment.deployment_id, ": downloading ", label, " (",
            IntegerToString(deployment.bundle_size), " bytes)");
     }
   string file = deployment.bundle_name + "-" + deployment.bundle_version + ".ex5";
   long resumed = 0;
   if(!g_client.DownloadBundle(deployment, file, resumed))
     {
      string code = g_client.LastCode();
      if(code != EAGATE_ERR_DIGEST_MISMATCH && code != EAGATE_ERR_FILE && code != EAGATE_ERR_BAD_RESPONSE)
        {
         Print(EA_NAME, ": the download of ", label, " stopped: ", g_client.LastError(), "; resuming after the next poll");
         return false;
        }
      string reason = g_client.LastError();
      Print(EA_NAME, ": ", label, " failed: ", reason);
      if(!g_client.ReportDeployment(deployment.deployment_id, "failed", reason))
         return ReportRefused("failed");
      return true;
     }
   string resumed_text = "";
   if(resumed > 0)
      resumed_text = ", resumed at byte " + IntegerToString(resumed);
   Print(EA_NAME, ": ", label, " saved as MQL5\\Files\\", file, " (SHA-256 verified", resumed_text, ")");
   if(!g_client.ReportDeployment(deployment.deployment_id, "installed", ""))
      return ReportRefused("installed");
   Print(EA_NAME, ": deployment ", deployment.deployment_id, ": installed");
   g_last_heartbeat = 0;  // report the running version now
   return true;
  }

//+------------------------------------------------------------------+
//| One cycle: heartbeat when due, long-poll, handle each signal.    |
//+------------------------------------------------------------------+
void OnTimer()
  {
   if(g_halted)
      return;
   long now = (long)TimeLocal();
   if(now < g_next_attempt)
      return;
   if(g_last_heartbeat == 0 || now - g_last_heartbeat >= InpHeartbeatSeconds)
     {
      EagateHeartbeat heartbeat;
      EagateHeartbeatFromTerminal(heartbeat, EA_VERSION);
      // A heartbeat is a report, not a precondition for trading: a
      // refused or failed one is logged and tried again at the next
      // interval; only a fatal error (wrong secret, revoked device) stops.
      if(!g_client.Heartbeat(heartbeat))
        {
         if(g_client.LastErrorIsFatal())
           {
            OnFailure("heartbeat");
            return;
           }
         Print(EA_NAME, ": heartbeat failed: ", g_client.LastError(), "; next one in ",
               IntegerToString(InpHeartbeatSeconds), " s, polling goes on");
        }
      g_last_heartbeat = now;
     }
   if(!RefreshConfig())
     {
      OnFailure("configuration");
      return;
     }
   EagateSignal signals[];
   if(!g_client.Poll(InpPollWaitSeconds, signals))
     {
      OnFailure("poll");
      return;
     }
   // A new revision: fetch the configuration before trading these.
   if(!RefreshConfig())
     {
      OnFailure("configuration");
      return;
     }
   g_failures = 0;
   for(int i = 0; i < ArraySize(signals) && !g_halted && !IsStopped(); i++)
      Handle(signals[i]);
   // Trading first; then a deployment, when the poll reports a change.
   if(InpInstallDeployments && !g_halted && !IsStopped() && g_client.DeploymentRevision() != g_deployment_revision)
      if(CheckDeployment())
         g_deployment_revision = g_client.DeploymentRevision();
   Comment(EA_NAME, " ", EA_VERSION, " | device ", g_client.DeviceId(), " | signals handled: ",
           IntegerToString(g_handled), " | clock offset: ", IntegerToString(g_client.ClockOffset()), " s");
  }
