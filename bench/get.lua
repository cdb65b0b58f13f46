-- wrk script: GET requests, each a random line of $BENCH_REQUESTS ("PATH TOKEN", one a line): a
-- random recipient's token with its path. Prints one machine-readable summary line at the end.
--   BENCH_REQUESTS=search.txt wrk -t1 -c32 -d15s --latency -s bench/get.lua http://127.0.0.1:18090

local requests = {}

function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local path, token = line:match("^(%S+)%s+(%S+)$")
    if path ~= nil then
      requests[#requests + 1] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
    end
  end
  math.randomseed(os.time() + #requests)
end

-- BENCH_ORDER=cycle: every line in turn (one pass covers them all), else a random line each time
local cycle = os.getenv("BENCH_ORDER") == "cycle"
local counter = 0

function request()
  if cycle then
    counter = counter + 1
    return requests[((counter - 1) % #requests) + 1]
  end
  return requests[math.random(#requests)]
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
