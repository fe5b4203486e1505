// Runs one MQL5 program (preprocessed by mql5pp.py) the way the terminal
// would: a script's OnStart(), or an Expert Advisor's OnInit(), OnTimer()
// every EventSetTimer() seconds, and OnDeinit().
//
// Build: g++ -include mql5.h -DMQL5_PROGRAM='"path/Program.mq5"' [-DSHIM_SCRIPT] driver.cpp shim.o
//
// Environment, besides shim.cpp's:
//   SHIM_MAX_SECONDS        stop the EA after this long (default 120; exit 4)
//   SHIM_STOP_AFTER_ACKS    stop once this many acknowledgements succeeded
//   SHIM_STOP_AFTER_TIMERS  stop after this many OnTimer() calls
// Exit status: a script's SetReturnError() value; for an EA 0 when a stop
// condition was met, 3 when OnInit() failed, 4 on the time limit, 5 when the
// EA stopped by itself (killed its timer or called ExpertRemove()).
#include "mql5.h"
#include "shim_internal.h"

#include <chrono>
#include <thread>

#include <unistd.h>

#include MQL5_PROGRAM

namespace {
long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, nullptr, 10) : fallback;
}
}  // namespace

int main() {
    shim::start();
    const long max_seconds = env_long("SHIM_MAX_SECONDS", 120);
    std::thread([max_seconds] {
        std::this_thread::sleep_for(std::chrono::seconds(max_seconds));
        shim::request_stop("time limit");
        // A program that ignores IsStopped() gets a grace period, then ends.
        std::this_thread::sleep_for(std::chrono::seconds(20));
        fprintf(stderr, "driver: the program did not stop within 20 s of the time limit\n");
        _exit(4);
    }).detach();
#ifdef SHIM_SCRIPT
    OnStart();
    fflush(stdout);
    return shim::return_code();
#else
    const long stop_after_acks = env_long("SHIM_STOP_AFTER_ACKS", 0);
    const long stop_after_timers = env_long("SHIM_STOP_AFTER_TIMERS", 0);
    int init = OnInit();
    fprintf(stderr, "driver: OnInit() returned %d\n", init);
    if (init != INIT_SUCCEEDED) return 3;
    long timers = 0;
    int exit_code = 0;
    auto next = std::chrono::steady_clock::now();
    while (true) {
        if (stop_after_acks > 0 && shim::acks_ok() >= stop_after_acks) shim::request_stop("acknowledgements done");
        if (stop_after_timers > 0 && timers >= stop_after_timers) shim::request_stop("timer events done");
        if (shim::stop_requested()) break;
        int period = shim::timer_period();
        if (period <= 0) {
            shim::request_stop("the EA killed its timer");
            break;
        }
        while (std::chrono::steady_clock::now() < next && !shim::stop_requested())
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (shim::stop_requested()) break;
        auto started = std::chrono::steady_clock::now();
        OnTimer();
        timers++;
        next = started + std::chrono::seconds(period);
    }
    const std::string &why = shim::stop_reason();
    if (why == "time limit") exit_code = 4;
    if (why == "the EA killed its timer" || shim::expert_removed()) exit_code = 5;
    fprintf(stderr, "driver: stopping after %ld timer events: %s\n", timers, why.c_str());
    OnDeinit(shim::expert_removed() ? 1 : 0);
    fflush(stdout);
    return exit_code;
#endif
}
