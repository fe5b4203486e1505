// What the driver (driver.cpp) and the shim share beyond the MQL5 surface.
#pragma once

#include <string>

namespace shim {
// Reads SHIM_* environment variables, loads the simulated account state.
void start();
// Seconds between OnTimer calls (0: no timer).
int timer_period();
// ExpertRemove() was called, or the run was told to stop.
bool stop_requested();
void request_stop(const char *why);
const std::string &stop_reason();
bool expert_removed();
// Successful (2xx) POST /api/v1/device/ack answers seen so far.
int acks_ok();
// The value given to SetReturnError().
int return_code();
}  // namespace shim
