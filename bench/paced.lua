-- wrk script: another script's requests ($BENCH_SCRIPT: bench/multi.lua or bench/get.lua), each
-- connection pausing $BENCH_DELAY_MS ms between its requests: a paced load that leaves the service
-- room, where the other scripts alone keep every connection busy (a saturating load).
-- With BENCH_DELAY_RANDOM=1 the pause is drawn from an exponential distribution of that mean, as
-- independent users' think times are, instead of keeping connections answered together (by one
-- batch's commit) in step.
--   BENCH_SCRIPT=bench/get.lua BENCH_DELAY_MS=20 BENCH_REQUESTS=... wrk -t1 -c4 -d10s -s bench/paced.lua URL

dofile(os.getenv("BENCH_SCRIPT"))

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local random = os.getenv("BENCH_DELAY_RANDOM") == "1"

function delay()
  if random then
    return math.floor(-pause * math.log(1 - math.random()) + 0.5)
  end
  return pause
end
