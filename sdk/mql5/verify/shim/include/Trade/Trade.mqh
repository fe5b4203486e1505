// Trade/Trade.mqh for the shim: the part of MetaTrader's standard CTrade
// class the reference EA uses, executing against the simulated account in
// shim.cpp (market orders fill at the simulated ask/bid and open a position
// of a hedging account; PositionClose closes one at the bid/ask; pending
// orders are placed; volume, price, stop and margin checks answer with the
// trade server's retcodes).
#pragma once

class CTrade {
public:
    CTrade() {}
    void SetExpertMagicNumber(const ulong magic) { m_magic = magic; }
    void SetDeviationInPoints(const ulong deviation) { m_deviation = deviation; }
    // The simulated trade server accepts every filling mode.
    bool SetTypeFillingBySymbol(const string &symbol) { return SymbolSelect(symbol, true); }
    bool Buy(const double volume, const string &symbol = string(), double price = 0.0, const double sl = 0.0,
             const double tp = 0.0, const string &comment = string()) {
        (void)price;
        return Run(0, volume, symbol, 0.0, sl, tp, comment);
    }
    bool Sell(const double volume, const string &symbol = string(), double price = 0.0, const double sl = 0.0,
              const double tp = 0.0, const string &comment = string()) {
        (void)price;
        return Run(1, volume, symbol, 0.0, sl, tp, comment);
    }
    bool BuyLimit(const double volume, const double price, const string &symbol = string(), const double sl = 0.0,
                  const double tp = 0.0, const ENUM_ORDER_TYPE_TIME type_time = ORDER_TIME_GTC,
                  const datetime expiration = 0, const string &comment = string()) {
        return Pending(2, volume, price, symbol, sl, tp, type_time, expiration, comment);
    }
    bool SellLimit(const double volume, const double price, const string &symbol = string(), const double sl = 0.0,
                   const double tp = 0.0, const ENUM_ORDER_TYPE_TIME type_time = ORDER_TIME_GTC,
                   const datetime expiration = 0, const string &comment = string()) {
        return Pending(3, volume, price, symbol, sl, tp, type_time, expiration, comment);
    }
    bool BuyStop(const double volume, const double price, const string &symbol = string(), const double sl = 0.0,
                 const double tp = 0.0, const ENUM_ORDER_TYPE_TIME type_time = ORDER_TIME_GTC,
                 const datetime expiration = 0, const string &comment = string()) {
        return Pending(4, volume, price, symbol, sl, tp, type_time, expiration, comment);
    }
    bool SellStop(const double volume, const double price, const string &symbol = string(), const double sl = 0.0,
                  const double tp = 0.0, const ENUM_ORDER_TYPE_TIME type_time = ORDER_TIME_GTC,
                  const datetime expiration = 0, const string &comment = string()) {
        return Pending(5, volume, price, symbol, sl, tp, type_time, expiration, comment);
    }
    // Closes a position by ticket at the market (bid for a buy, ask for a
    // sell); the closing order carries this CTrade's magic number.
    bool PositionClose(const ulong ticket, const ulong deviation = ULONG_MAX) {
        (void)deviation;
        m_result = shim::close_position(ticket, m_magic);
        return m_result.retcode == TRADE_RETCODE_DONE;
    }
    uint ResultRetcode() const { return m_result.retcode; }
    string ResultRetcodeDescription() const { return shim::retcode_description(m_result.retcode); }
    ulong ResultOrder() const { return m_result.order; }
    ulong ResultDeal() const { return m_result.deal; }
    double ResultPrice() const { return m_result.price; }
    double ResultVolume() const { return m_result.volume; }

private:
    ulong m_magic = 0;
    ulong m_deviation = 10;
    shim::TradeResult m_result;

    bool Run(int kind, double volume, const string &symbol, double price, double sl, double tp, const string &comment) {
        if (symbol.u.empty()) shim::fatal("CTrade: pass the symbol explicitly (the chart symbol is not modelled)");
        m_result = shim::trade(kind, volume, symbol, price, sl, tp, m_magic, comment);
        return m_result.retcode == TRADE_RETCODE_DONE || m_result.retcode == TRADE_RETCODE_PLACED ||
               m_result.retcode == TRADE_RETCODE_DONE_PARTIAL;
    }
    bool Pending(int kind, double volume, double price, const string &symbol, double sl, double tp,
                 ENUM_ORDER_TYPE_TIME type_time, datetime expiration, const string &comment) {
        if (type_time != ORDER_TIME_GTC || expiration != 0) shim::fatal("CTrade: only GTC pending orders are modelled");
        return Run(kind, volume, symbol, price, sl, tp, comment);
    }
};
