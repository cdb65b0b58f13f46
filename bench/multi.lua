-- wrk script: POST a cycle of pre-built JSON bodies (one per line of $BENCH_BODIES) with an
-- optional bearer token ($BENCH_TOKEN), and print one machine-readable summary line at the end.
--   BENCH_BODIES=bodies_1.txt BENCH_TOKEN=... wrk -t1 -c32 -d15s --latency -s bench/multi.lua URL

local requests = {}
local counter = 0

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("BENCH_TOKEN")
  if token ~= nil and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("POST", wrk.path, headers, line)
    end
  end
  -- different threads (and connections) start at different bodies
  counter = math.random(0, #requests - 1)
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"mean_us":%.1f,"max_us":%d,"p50_us":%d,"p75_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
