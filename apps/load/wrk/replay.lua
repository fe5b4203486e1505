-- Replays ready-made HTTP requests with wrk, one after another.
--
--   wrk -t1 -c64 -d10s --timeout 10s -s replay.lua http://127.0.0.1:PORT -- FILE [cycle]
--
-- FILE holds complete requests, each followed by the byte 0x1E (written by
-- eagate-load). Signed device requests carry a nonce that works once, so by
-- default each request is sent at most once: when the list runs out it
-- starts again but counts the wrap, and eagate-load discards that run (the
-- repeats would be refused as replays). With `cycle`, repeating is expected
-- (unsigned requests, or the bare handler that checks nothing).
--
-- done() prints one line `EAGATE_LOAD_JSON {...}` with the totals and the
-- latency percentiles in microseconds, which eagate-load parses.

local requests = {}
local count = 0
local next_index = 0
local cycle = false
wraps = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("replay.lua: give the request file after --")
  end
  cycle = args[2] == "cycle"
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while true do
    local stop = string.find(data, "\30", pos, true)
    if stop == nil then
      break
    end
    count = count + 1
    requests[count] = string.sub(data, pos, stop - 1)
    pos = stop + 1
  end
  if count == 0 then
    error("replay.lua: no requests in " .. path)
  end
end

function request()
  next_index = next_index + 1
  if next_index > count then
    next_index = 1
    if not cycle then
      wraps = wraps + 1
    end
  end
  return requests[next_index]
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, _)
  local total_wraps = 0
  for _, t in ipairs(threads) do
    total_wraps = total_wraps + (t:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'EAGATE_LOAD_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"wraps":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    total_wraps))
end
